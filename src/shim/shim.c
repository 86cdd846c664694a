/* makescope-shim: what make runs instead of the makefile's shell, once per recipe line.
 *
 * The plugin sets every target's SHELL to a link to this program whose path spells the
 * makefile's SHELL (`<dir>/abs/bin/bash`), so make runs `<dir>/abs/bin/bash -c 'CMD'`
 * and the shim knows the real shell from its argv[0]. If MAKESCOPE_CTX says this is a
 * recipe line of the make that is our parent, the shim tells the recorder, runs the
 * real shell with its output on pipes (in a child that first installs the seccomp
 * filter and hands its listener to the recorder), and reports output, status and
 * resources. Anything else (`$(shell …)`, a recipe's own `$(SHELL) script`) execs the
 * real shell straight away. The shell gets the same arguments, environment (less our
 * SHELL link) and file descriptors it would get from make: the jobserver keeps working.
 *
 * Why C, linked statically: it runs for every recipe line, and a dynamically linked
 * program costs ~0.9 ms just to start on these machines, a static one ~0.1 ms. The
 * seccomp program itself is built by the recorder (src/trace/filter.rs) and read from
 * MAKESCOPE_FILTER. The message format is in src/protocol.h (the C mirror of
 * src/protocol.rs); the job context, `runs_make` and the real-shell rule mirror
 * src/protocol.rs too: change both or neither.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../protocol.h"
#include "../trace/pathsearch.h"
#include "../trace/ring.h"

extern char **environ;

#define MAX_MESSAGE (60 * 1024)
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS 0x40082104
#endif

static volatile pid_t child_pid;

/* ---- messages (the encoding is in ../protocol.h) ---------------------------------- */

static int send_msg (int sock, struct msg *m)
{
  ssize_t n = send (sock, m->data, m->len, MSG_NOSIGNAL);
  return n < 0 ? -errno : 0;
}

/* ---- the job context (MAKESCOPE_CTX, see JobContext in src/protocol.rs) ------------ */

struct context { long make_pid; const char *target; size_t target_len; const char *make; size_t make_len; };

static int parse_context (const char *value, struct context *c)
{
  const char *field[11];
  size_t len[11];
  int n = 0;
  const char *p = value;
  while (n < 11)
    {
      const char *end = strchr (p, '\x1f');
      field[n] = p;
      len[n] = end ? (size_t) (end - p) : strlen (p);
      n++;
      if (!end)
        break;
      p = end + 1;
    }
  if (n < 10 || len[0] != 1 || field[0][0] != '1')
    return -1;
  c->make_pid = strtol (field[1], NULL, 10);
  c->target = field[3];
  c->target_len = len[3];
  c->make = n > 10 ? field[10] : "";
  c->make_len = n > 10 ? len[10] : 0;
  return 0;
}

/* Whether COMMAND runs MAKE (the value of $(MAKE)) as a command word. */
static int is_boundary (int c) { return c == 0 || strchr (" \t\n;&|()`'\"=", c) != NULL; }
static int runs_make (const char *command, const char *make, size_t make_len)
{
  if (!make_len)
    return 0;
  int make_has_slash = memchr (make, '/', make_len) != NULL;
  for (const char *p = command; (p = memmem (p, strlen (p), make, make_len)); p++)
    {
      int before = p == command ? 0 : (unsigned char) p[-1];
      int before_ok = is_boundary (before) || (before == '/' && !make_has_slash);
      if (before_ok && is_boundary ((unsigned char) p[make_len]))
        return 1;
    }
  return 0;
}

/* make runs a recipe line without a shell when SHELL is /bin/sh and the line needs none
   (job.c's construct_command_argv_internal); so do we, a conservative subset of it:
   no quotes, backslashes or shell metacharacters anywhere, no assignment or builtin
   as the first word. */
static char **simple_command (char **argv, int argc)
{
  static const char *builtins[] = {
    ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "eval", "exec", "exit", "export",
    "fc", "fg", "for", "getopts", "hash", "if", "jobs", "login", "logout", "read", "readonly", "return",
    "set", "shift", "test", "trap", "type", "ulimit", "umask", "unalias", "unset", "wait", "while", NULL };
  if (argc != 3 || strcmp (argv[0], "/bin/sh") || (strcmp (argv[1], "-c") && strcmp (argv[1], "-ec")))
    return NULL;
  const char *command = argv[2];
  if (strpbrk (command, "#;\"*?[]&|<>(){}$`^~!'\\\n\r"))
    return NULL;
  char *copy = strdup (command);
  char **words = calloc (strlen (command) / 2 + 2, sizeof *words);
  int n = 0;
  for (char *save = NULL, *w = strtok_r (copy, " \t", &save); w; w = strtok_r (NULL, " \t", &save))
    words[n++] = w;
  if (!n || strchr (words[0], '='))
    return NULL;
  for (const char **b = builtins; *b; b++)
    if (!strcmp (words[0], *b))
      return NULL;
  return words;
}

/* ---- small helpers ------------------------------------------------------------------ */

/* Run argv[0] found along `path` (as execvp does with PATH; NULL: every candidate
   is known to be missing), or say why not as make would. */
static void exec_along (char **argv, const char *path)
{
  if (path)
    search_exec (execve, argv[0], path, argv, environ);
  else
    errno = ENOENT;
  fprintf (stderr, "make: %s: %s\n", argv[0], strerror (errno));
  _exit (127);
}

static void exec_or_die (char **argv)
{
  exec_along (argv, getenv ("PATH"));
}

/* The start of the command's PATH search, made before the filter is in place: each
   directory without the program would otherwise be a trapped execve. The candidates
   found missing are kept to be recorded as probes through the ring. */
struct misses
{
  char names[8192]; /* NUL-separated absolute paths */
  size_t used;
};

/* Returns where the search must go on: the first entry whose candidate exists (or that
   cannot be checked here: a relative one, one too long), or NULL when all are missing. */
static const char *skip_missing (const char *file, const char *path, struct misses *m)
{
  size_t flen = strlen (file);
  for (const char *p = path;;)
    {
      const char *end = strchr (p, ':');
      if (!end)
        end = p + strlen (p);
      size_t dlen = (size_t) (end - p);
      size_t need = dlen + 1 + flen + 1;
      if (dlen == 0 || *p != '/' || need - 1 > RING_PATH_MAX || m->used + need > sizeof m->names)
        return p;
      char *cand = m->names + m->used;
      memcpy (cand, p, dlen);
      cand[dlen] = '/';
      memcpy (cand + dlen + 1, file, flen + 1);
      struct stat st;
      if (stat (cand, &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
        return p;
      m->used += need;
      if (!*end)
        return NULL;
      p = end + 1;
    }
}

/* Record the misses in the ring as the helper would have. Returns 0 when all are in. */
static int record_misses (int ring_fd, const struct misses *m)
{
  size_t size = 4096 + (size_t) RING_UNITS * RING_UNIT;
  struct ring_header *ring = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
  if (ring == MAP_FAILED)
    return -1;
  int error = 0;
  for (size_t at = 0; at < m->used; at += strlen (m->names + at) + 1)
    {
      size_t len = strlen (m->names + at);
      struct ring_record *s = ring_reserve (ring, len);
      if (!s)
        {
          error = -1;
          break;
        }
      memcpy (s->path, m->names + at, len);
      s->pid = getpid ();
      s->ppid = getppid ();
      ring_commit (s, RING_PROBE);
    }
  munmap (ring, size);
  return error;
}

/* If the makefile exports SHELL, make put our link in the environment: give the command
   the makefile's shell instead. */
static const char *real_shell (const char *dir, const char *path)
{
  size_t n = strlen (dir);
  if (!dir[0] || strncmp (path, dir, n))
    return NULL;
  const char *rest = path + n;
  if (!strncmp (rest, "/abs/", 5))
    return rest + 4;
  if (!strncmp (rest, "/rel/", 5) && rest[5])
    return rest + 5;
  return NULL;
}
static void restore_shell_variable (const char *dir)
{
  const char *shell = getenv ("SHELL");
  const char *real = shell ? real_shell (dir, shell) : NULL;
  if (real)
    setenv ("SHELL", real, 1);
}

static void write_all (int fd, const char *p, size_t n)
{
  while (n)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return;
      p += w;
      n -= (size_t) w;
    }
}

static void forward (int sig)
{
  if (child_pid > 0)
    kill (child_pid, sig);
}

/* ---- tracing (in the child) ------------------------------------------------------- */

/* Send M with N (1 or 2) file descriptors. */
static int send_fds (int sock, struct msg *m, const int *fds, int n)
{
  char control[CMSG_SPACE (2 * sizeof (int))];
  memset (control, 0, sizeof control);
  struct iovec iov = { .iov_base = m->data, .iov_len = m->len };
  struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                      .msg_controllen = CMSG_SPACE (n * sizeof (int)) };
  struct cmsghdr *c = CMSG_FIRSTHDR (&h);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (n * sizeof (int));
  memcpy (CMSG_DATA (c), fds, n * sizeof (int));
  return sendmsg (sock, &h, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* The fast path's ring (layout in src/trace/ring.rs, made as Ring::new makes it): a
   memfd sealed against shrinking, inherited by the command (no close-on-exec). -1 when
   it cannot be made: then every call is trapped, which costs time, not records. */
static int make_ring (void)
{
  int fd = memfd_create ("makescope-ring", MFD_ALLOW_SEALING);
  if (fd < 0)
    return -1;
  uint64_t header[4] = { 0, RING_UNITS, 0, RING_MAGIC };
  if (ftruncate (fd, 4096 + (off_t) RING_UNITS * RING_UNIT) != 0
      || pwrite (fd, header, sizeof header, 0) != (ssize_t) sizeof header
      || fcntl (fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* makescope runs make itself with the fast path's helper preloaded and a ring of its
   own (MAKESCOPE_TRACE_UNFILTERED set: no filter under make), so that make's own file
   activity is recorded. A recipe line that is traced, or whose tracing is refused, must
   not inherit that: take make's ring and the helper back out (the descriptor only if it
   is still that ring) and the sanitizer setting that came with them. A sub-make's line
   keeps them, for the sub-make. */
static void leave_make_ring (const char *helper)
{
  if (!getenv ("MAKESCOPE_TRACE_UNFILTERED"))
    return;
  const char *number = getenv ("MAKESCOPE_TRACE_RING");
  int fd = number ? atoi (number) : -1;
  uint64_t header[4];
  int seals = fd > 2 ? fcntl (fd, F_GET_SEALS) : -1;
  if (seals >= 0 && (seals & F_SEAL_SHRINK) && pread (fd, header, sizeof header, 0) == (ssize_t) sizeof header
      && header[3] == RING_MAGIC)
    close (fd);
  unsetenv ("MAKESCOPE_TRACE_UNFILTERED");
  unsetenv ("MAKESCOPE_TRACE_RING");
  unsetenv ("MAKESCOPE_TRACE_PAGE");
  const char *old = getenv ("LD_PRELOAD");
  if (old && helper && *helper)
    {
      char *kept = malloc (strlen (old) + 1), *out = kept;
      size_t hn = strlen (helper);
      for (const char *p = old; kept && *p;)
        {
          size_t n = strcspn (p, " :");
          if (n && !(n == hn && !memcmp (p, helper, n)))
            {
              if (out != kept)
                *out++ = ' ';
              memcpy (out, p, n);
              out += n;
            }
          p += n;
          p += strspn (p, " :");
        }
      if (kept)
        {
          *out = 0;
          if (*kept)
            setenv ("LD_PRELOAD", kept, 1);
          else
            unsetenv ("LD_PRELOAD");
          free (kept);
        }
    }
  const char *asan = getenv ("ASAN_OPTIONS");
  static const char link_order[] = "verify_asan_link_order=0";
  size_t an = asan ? strlen (asan) : 0, ln = sizeof link_order - 1;
  if (an >= ln && !strcmp (asan + an - ln, link_order))
    {
      char *kept = strndup (asan, an - ln - (an > ln && asan[an - ln - 1] == ':'));
      if (kept && *kept)
        setenv ("ASAN_OPTIONS", kept, 1);
      else
        unsetenv ("ASAN_OPTIONS");
      free (kept);
    }
}

/* Preload the fast path's helper (after any LD_PRELOAD the command already has: a
   sanitizer's runtime must stay first) and tell it where the ring is. */
static void enable_fast_path (const char *helper, int ring)
{
  char number[16], *value;
  const char *old = getenv ("LD_PRELOAD");
  if (old && *old)
    {
      if (asprintf (&value, "%s %s", old, helper) < 0)
        return;
    }
  else if (!(value = strdup (helper)))
    return;
  snprintf (number, sizeof number, "%d", ring);
  /* A program built with AddressSanitizer refuses to start unless its runtime is the
     first library loaded; its shadow memory covers our page anyway, so in it the helper
     stays off and its calls are trapped. Only that check is turned off. */
  const char *asan = getenv ("ASAN_OPTIONS");
  char *asan_value;
  if (asprintf (&asan_value, "%s%sverify_asan_link_order=0", asan && *asan ? asan : "",
                asan && *asan ? ":" : "") >= 0)
    {
      setenv ("ASAN_OPTIONS", asan_value, 1);
      free (asan_value);
    }
  setenv ("MAKESCOPE_TRACE_RING", number, 1);
  setenv ("MAKESCOPE_TRACE_PAGE", "10000000000", 1);  /* FAST_PATH_PAGE in ring.rs */
  setenv ("LD_PRELOAD", value, 1);
  free (value);
}

/* Install the recorder's filter (read from MAKESCOPE_FILTER) and hand the listener over,
   with the fast path's ring when MAKESCOPE_PRELOAD names the helper. Returns 0, or an
   errno. */
/* Install the filter and hand the listener (and the ring, made here when the fast path
   is on: *ring_fd, else -1) to the recorder. */
static int start_tracing (int sock, int *ring_fd)
{
  *ring_fd = -1;
  const char *path = getenv ("MAKESCOPE_FILTER");
  int fd = path ? open (path, O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0)
    return errno ? errno : ENOENT;
  static struct sock_filter program[4096];
  ssize_t n = read (fd, program, sizeof program);
  close (fd);
  if (n <= 0 || n % (ssize_t) sizeof program[0])
    return EINVAL;
  struct sock_fprog prog = { .len = (unsigned short) (n / (ssize_t) sizeof program[0]), .filter = program };
  /* Made before the filter is in place: nothing here may wait for the recorder. */
  const char *helper = getenv ("MAKESCOPE_PRELOAD");
  int ring = helper && *helper ? make_ring () : -1;
  long listener = -1;
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
    {
      /* SPEC_ALLOW: this filter observes, it does not sandbox; without it, kernels that
         mitigate speculative store bypass for seccomp'd tasks slow every traced program. */
      unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_SPEC_ALLOW;
      listener = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
      if (listener < 0 && errno == EINVAL)
        listener = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    }
  if (listener < 0)
    {
      int error = errno;
      if (ring >= 0)
        close (ring);
      return error;
    }
  uint64_t flags = 1; /* SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 6.6+; only a speed-up */
  ioctl ((int) listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags);
  int fds[2] = { (int) listener, ring };
  struct msg m;
  msg_start (&m, LISTENER);
  put_num (&m, getpid ());
  int error = send_fds (sock, &m, fds, fds[1] >= 0 ? 2 : 1);
  close ((int) listener);
  if (fds[1] >= 0)
    {
      if (!error)
        {
          enable_fast_path (helper, fds[1]);
          *ring_fd = fds[1];
        }
      else
        close (fds[1]);
    }
  setenv ("MAKESCOPE_TRACED", "1", 1);
  return error < 0 ? -error : 0;
}

/* ---- the command ------------------------------------------------------------------- */

static void pump_output (int sock, pid_t child, int out, int err, int tee)
{
  int pidfd = (int) syscall (SYS_pidfd_open, child, 0);
  struct pollfd fds[3] = { { out, POLLIN, 0 }, { err, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
  static char buffer[MAX_MESSAGE - 64];
  int exited = pidfd < 0, open_pipes = 2;
  while (open_pipes > 0)
    {
      int ready = poll (fds, 3, exited ? 100 : -1);
      if (ready < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (ready == 0)
        break;  /* the child is gone and nothing more came: someone else holds the pipe */
      if (fds[2].revents)
        {
          exited = 1;
          fds[2].fd = -1;
        }
      for (int i = 0; i < 2; i++)
        {
          if (!fds[i].revents)
            continue;
          ssize_t n = read (fds[i].fd, buffer, sizeof buffer);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              fds[i].fd = -1;
              open_pipes--;
              continue;
            }
          if (tee)
            write_all (i + 1, buffer, (size_t) n);
          struct msg m;
          msg_start (&m, OUTPUT);
          put (&m, i == 0 ? "1" : "2", 1);
          put (&m, buffer, (size_t) n);
          send_msg (sock, &m);
          free (m.data);
        }
    }
  if (pidfd >= 0)
    close (pidfd);
}

/* Processes the command left running (orphans reparented to us as subreaper). */
static ssize_t read_proc (int pid, const char *name, char *buf, size_t size)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/%s", pid, name);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read (fd, buf, size);
  close (fd);
  return n;
}

static void put_left_behind (struct msg *m)
{
  char path[64], line[4096];
  snprintf (path, sizeof path, "/proc/%d/task/%d/children", (int) getpid (), (int) getpid ());
  FILE *f = fopen (path, "re");
  struct msg list = { 0 };
  list.data = malloc (list.cap = 256);
  if (f)
    {
      int pid;
      while (fscanf (f, "%d", &pid) == 1)
        {
          /* A process in the middle of an exec (between taking its new memory and
             laying out its arguments there) shows an empty command line for a moment;
             a zombie shows none at all: then its name. */
          ssize_t n = 0;
          for (int attempt = 0; attempt < 20 && n <= 0; attempt++)
            {
              if (attempt)
                usleep (500);
              n = read_proc (pid, "cmdline", line, sizeof line - 1);
            }
          if (n <= 0 && (n = read_proc (pid, "comm", line, sizeof line - 1)) > 0 && line[n - 1] == '\n')
            n--;
          line[n > 0 ? n : 0] = 0;
          char entry[4200];
          int len = snprintf (entry, sizeof entry, "%s%d %s", list.len ? "\n" : "", pid, line);
          if (list.len)
            entry[0] = 0;  /* NUL-separated */
          if (list.len + (size_t) len + 1 > list.cap)
            list.data = realloc (list.data, list.cap = (list.len + (size_t) len + 1) * 2);
          memcpy (list.data + list.len, entry, (size_t) len);
          list.len += (size_t) len;
        }
      fclose (f);
    }
  put (m, list.data, list.len);
  free (list.data);
}

static void put_environment (struct msg *m)
{
  size_t total = 0;
  for (char **e = environ; *e; e++)
    total += strlen (*e) + 1;
  char *joined = malloc (total + 1), *p = joined;
  for (char **e = environ; *e; e++)
    {
      size_t n = strlen (*e);
      memcpy (p, *e, n);
      p += n;
      *p++ = 0;
    }
  put (m, joined, total ? total - 1 : 0);
  free (joined);
}

static int run (char **argv, int argc, const char *ctx_raw, const struct context *ctx, int sock)
{
  const char *trace = getenv ("MAKESCOPE_TRACE"), *tee_env = getenv ("MAKESCOPE_TEE");
  int tracing = trace && !strcmp (trace, "1");
  int nested = getenv ("MAKESCOPE_TRACED") != NULL;
  int tee = tee_env && !strcmp (tee_env, "1");

  char cwd[8192];
  if (!getcwd (cwd, sizeof cwd))
    cwd[0] = 0;
  char target[8192];
  size_t tn = ctx->target_len < sizeof target - 1 ? ctx->target_len : sizeof target - 1;
  memcpy (target, ctx->target, tn);
  target[tn] = 0;
  struct stat st;
  int existed = tn > 0 && stat (target, &st) == 0;

  for (int attempt = 0; attempt < 2; attempt++)
    {
      struct msg m;
      msg_start (&m, COMMAND_START);
      put_num (&m, getpid ());
      put_str (&m, ctx_raw);
      size_t total = 0;
      for (int i = 0; i < argc; i++)
        total += strlen (argv[i]) + 1;
      char *joined = malloc (total + 1), *p = joined;
      for (int i = 0; i < argc; i++)
        {
          size_t n = strlen (argv[i]);
          memcpy (p, argv[i], n);
          p += n;
          *p++ = 0;
        }
      put (&m, joined, total ? total - 1 : 0);
      free (joined);
      put_str (&m, cwd);
      if (attempt == 0)
        put_environment (&m);
      else
        put (&m, "", 0);  /* too large for one message: the record keeps the rest */
      put_num (&m, now_ns ());
      put_num (&m, existed);
      put_str (&m, nested ? "a" : "");
      int error = send_msg (sock, &m);
      free (m.data);
      if (!error)
        break;
      if (error != -EMSGSIZE || attempt)
        return -1;
    }
  if (nested)
    {
      /* Our child's accesses reach the recorder through an outer command's filter: it
         must know us before the first of them arrives. */
      char ack[16];
      recv (sock, ack, sizeof ack, 0);
    }

  int out[2], err[2];
  if (pipe2 (out, O_CLOEXEC) || pipe2 (err, O_CLOEXEC))
    return -1;
  prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal (SIGINT, SIG_IGN);
  signal (SIGQUIT, SIG_IGN);
  pid_t child = fork ();
  if (child < 0)
    return -1;
  if (child == 0)
    {
      signal (SIGINT, SIG_DFL);
      signal (SIGQUIT, SIG_DFL);
      dup2 (out[1], 1);
      dup2 (err[1], 2);
      char **command = simple_command (argv, argc);
      if (!command)
        command = argv;
      const char *search = getenv ("PATH");
      if (tracing && !nested)
        {
          if (runs_make (argv[argc - 1], ctx->make, ctx->make_len))
            {
              /* Leave the sub-make untraced: its own commands get their own filters. */
              struct msg m;
              msg_start (&m, SUB_MAKE);
              send_msg (sock, &m);
            }
          else
            {
              static struct misses misses;
              const char *helper = getenv ("MAKESCOPE_PRELOAD");
              leave_make_ring (helper);
              const char *rest = search;
              if (search && helper && *helper && !strchr (command[0], '/'))
                rest = skip_missing (command[0], search, &misses);
              int ring = -1;
              int error = start_tracing (sock, &ring);
              if (error)
                {
                  struct msg m;
                  msg_start (&m, TRACE_REFUSED);
                  put_str (&m, strerror (error));
                  send_msg (sock, &m);
                }
              else if (misses.used && ring >= 0 && record_misses (ring, &misses) == 0)
                search = rest;
            }
        }
      close (sock);
      exec_along (command, search);
    }
  child_pid = child;
  signal (SIGTERM, forward);
  signal (SIGHUP, forward);
  close (out[1]);
  close (err[1]);
  pump_output (sock, child, out[0], err[0], tee);

  int status = 0;
  struct rusage usage;
  memset (&usage, 0, sizeof usage);
  while (wait4 (child, &status, 0, &usage) < 0 && errno == EINTR)
    ;
  struct msg m;
  msg_start (&m, COMMAND_END);
  put_num (&m, status);
  put_num (&m, now_ns ());
  put_num (&m, (long long) usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec);
  put_num (&m, (long long) usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec);
  put_num (&m, usage.ru_maxrss);
  put_left_behind (&m);
  send_msg (sock, &m);
  close (sock);

  if (WIFSIGNALED (status))
    {
      signal (WTERMSIG (status), SIG_DFL);
      kill (getpid (), WTERMSIG (status));
    }
  return WIFEXITED (status) ? WEXITSTATUS (status) : 127;
}

int main (int argc, char **argv)
{
  const char *dir = getenv ("MAKESCOPE_SHELL_DIR");
  const char *real = argc > 0 && dir ? real_shell (dir, argv[0]) : NULL;
  if (real)
    argv[0] = (char *) real;
  else
    {
      argv++;
      argc--;
    }
  if (argc < 1)
    {
      fprintf (stderr, "makescope-shim: run by make in place of SHELL; nothing to run\n");
      return 127;
    }
  if (dir)
    restore_shell_variable (dir);

  const char *ctx_raw = getenv ("MAKESCOPE_CTX");
  struct context ctx;
  int ours = ctx_raw && parse_context (ctx_raw, &ctx) == 0 && ctx.make_pid == (long) getppid ();
  int sock = ours ? connect_recorder (getenv ("MAKESCOPE_SOCK")) : -1;
  if (sock < 0)
    exec_or_die (argv);
  int code = run (argv, argc, ctx_raw, &ctx, sock);
  if (code < 0)
    exec_or_die (argv);  /* the recorder is gone: run the command as make would */
  return code;
}
