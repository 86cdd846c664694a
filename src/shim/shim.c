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
 * MAKESCOPE_FILTER. The messages, the environment's names and the job context are
 * src/protocol.h's; what the shim reads from its own arguments (the real shell, a
 * sub-make's line) is line.h's; the fast path's set-up is src/trace/fastpath.h's.
 * This file only runs the command and reports on it.
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
#include "../trace/fastpath.h"
#include "../trace/pathsearch.h"
#include "line.h"

extern char **environ;

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
  return send_message (sock, m);
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

/* Run the line as make would have without us: a line that needs no shell (make's
   fast path) is exec'd directly, so a program that cannot run gets make's message
   (`make: ./x: No such file or directory`, as for `$(shell ./x)`), not the shell's. */
static void exec_or_die (char **argv, int argc)
{
  char **command = simple_command (argv, argc);
  exec_along (command ? command : argv, getenv ("PATH"));
}

/* If the makefile exports SHELL, make put our link in the environment: give the command
   the makefile's shell instead. */
static void restore_shell_variable (const char *dir)
{
  const char *shell = getenv ("SHELL");
  const char *real = shell ? real_shell (dir, shell) : NULL;
  if (real)
    setenv ("SHELL", real, 1);
}

/* Whether the space-separated list `list` has the word `word`. */
static int has_word (const char *list, const char *word)
{
  size_t n = strlen (word);
  for (const char *p = list; (p = strstr (p, word)) != NULL; p += n)
    if ((p == list || p[-1] == ' ' || p[-1] == '\t')
        && (p[n] == '\0' || p[n] == ' ' || p[n] == '\t'))
      return 1;
  return 0;
}

/* The makefile that loads the plugin travels to sub-makes in MAKEFILES: a makefile that
   set MAKEFILES itself, or unexported it, took it out; put it back in front. */
static void keep_makefiles_variable (void)
{
  const char *ours = getenv (ENV_MAKEFILE);
  if (!ours || !*ours)
    return;
  const char *old = getenv ("MAKEFILES");
  if (!old || !*old)
    {
      setenv ("MAKEFILES", ours, 1);
      return;
    }
  if (has_word (old, ours))
    return;
  size_t n = strlen (ours) + 1 + strlen (old) + 1;
  char *value = malloc (n);
  if (!value)
    return;
  snprintf (value, n, "%s %s", ours, old);
  setenv ("MAKEFILES", value, 1);
  free (value);
}

/* Whether descriptors a and b are open on the same file. */
static int same_file (int a, int b)
{
  struct stat sa, sb;
  return fstat (a, &sa) == 0 && fstat (b, &sb) == 0 && sa.st_dev == sb.st_dev
         && sa.st_ino == sb.st_ino;
}

/* 0, or the errno of the write that failed. */
static int write_all (int fd, const char *p, size_t n)
{
  while (n)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return w < 0 ? errno : EIO;
      p += w;
      n -= (size_t) w;
    }
  return 0;
}

/* A signal that came before the child's pid was known: passed on once it is. */
/* Runs only while child_pid is set (the signals are blocked until then). */
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

/* Install the recorder's filter (read from ENV_FILTER) and hand the listener over, with
   the fast path's ring when ENV_PRELOAD names the helper (made here: *ring_fd, else
   -1). Returns 0, or an errno. */
static int start_tracing (int sock, int *ring_fd)
{
  *ring_fd = -1;
  const char *path = getenv (ENV_FILTER);
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
  const char *helper = getenv (ENV_PRELOAD);
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
  encode_listener (&m, getpid ());
  int error = send_fds (sock, &m, fds, fds[1] >= 0 ? 2 : 1);
  free (m.data);
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
  setenv (ENV_TRACED, "1", 1);
  return error < 0 ? -error : 0;
}

/* ---- the command ------------------------------------------------------------------- */

/* Passes the command's output to the recorder and, with `tee`, to our own stdout and
   stderr. Returns 0, or the errno of the first failed write to our stdout: the command
   would have seen that error itself had it written there directly. Nothing more is
   teed to a stream once a write to it failed. */
static int pump_output (int sock, pid_t child, int out, int err, int tee)
{
  int tee_error = 0, tee_open[2] = { tee, tee };
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
          if (tee_open[i])
            {
              int error = write_all (i + 1, buffer, (size_t) n);
              if (error)
                tee_open[i] = 0;
              if (error && i == 0 && !tee_error)
                tee_error = error;
            }
          struct msg m;
          encode_output (&m, i + 1, buffer, (size_t) n);
          send_msg (sock, &m);
          free (m.data);
        }
    }
  if (pidfd >= 0)
    close (pidfd);
  return tee_error;
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

/* The processes the command left running: NUL-separated `pid argv0` entries, in
   list->data (list->len bytes; the caller frees it). */
static void left_behind (struct msg *list)
{
  char path[64], line[4096];
  snprintf (path, sizeof path, "/proc/%d/task/%d/children", (int) getpid (), (int) getpid ());
  FILE *f = fopen (path, "re");
  list->len = 0;
  list->data = malloc (list->cap = 256);
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
          int len = snprintf (entry, sizeof entry, "%s%d %s", list->len ? "\n" : "", pid, line);
          if (list->len)
            entry[0] = 0;  /* NUL-separated */
          if (list->len + (size_t) len + 1 > list->cap)
            list->data = realloc (list->data, list->cap = (list->len + (size_t) len + 1) * 2);
          memcpy (list->data + list->len, entry, (size_t) len);
          list->len += (size_t) len;
        }
      fclose (f);
    }
}

static int run (char **argv, int argc, const char *ctx_raw, const struct job_context *ctx, int sock)
{
  const char *trace = getenv (ENV_TRACE), *tee_env = getenv (ENV_TEE);
  int tracing = trace && !strcmp (trace, "1");
  int nested = getenv (ENV_TRACED) != NULL;
  int tee = tee_env && !strcmp (tee_env, "1");

  char cwd[8192];
  if (!getcwd (cwd, sizeof cwd))
    cwd[0] = 0;
  char target[8192];
  size_t tn = ctx->target.n < sizeof target - 1 ? ctx->target.n : sizeof target - 1;
  memcpy (target, ctx->target.p, tn);
  target[tn] = 0;
  struct stat st;
  int existed = tn > 0 && stat (target, &st) == 0;

  {
    /* However large the arguments and environment (up to what execve took): in parts. */
    struct msg m;
    encode_command_start (&m, getpid (), ctx_raw, argv, argc, cwd, environ, now_ns (), existed, nested);
    int error = send_msg (sock, &m);
    free (m.data);
    if (error)
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
  /* Passed through (--plain) to one file for both streams (a terminal, `> log 2>&1`,
     make -O's temporary file): one pipe for both, so that their order is the command's
     (two pipes are read in whatever order they fill); the record has it all as stdout. */
  int one_pipe = tee && same_file (1, 2);
  prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  /* The command gets the dispositions make gave us (an ignored SIGINT stays ignored). */
  void (*sigint) (int) = signal (SIGINT, SIG_IGN);
  void (*sigquit) (int) = signal (SIGQUIT, SIG_IGN);
  /* SIGTERM and SIGHUP (what make sends its jobs) are passed on to the command. They
     are blocked from before the fork until each side is ready: one that came between
     the fork and the handler would end the shim and leave the command running,
     unrecorded (issue 23, trial 1), and one the child took with our handler, before its
     own default, would be lost. Ignored ones stay ignored. */
  sigset_t forwarded, before;
  sigemptyset (&forwarded);
  sigaddset (&forwarded, SIGTERM);
  sigaddset (&forwarded, SIGHUP);
  sigprocmask (SIG_BLOCK, &forwarded, &before);
  void (*sigterm) (int) = signal (SIGTERM, SIG_IGN);
  void (*sighup) (int) = signal (SIGHUP, SIG_IGN);
  if (sigterm != SIG_IGN)
    signal (SIGTERM, forward);
  if (sighup != SIG_IGN)
    signal (SIGHUP, forward);
  if (getenv (ENV_SHIM_STOP))
    raise (SIGSTOP);
  pid_t child = fork ();
  if (child < 0)
    {
      sigprocmask (SIG_SETMASK, &before, NULL);
      return -1;
    }
  if (child == 0)
    {
      signal (SIGINT, sigint == SIG_IGN ? SIG_IGN : SIG_DFL);
      signal (SIGQUIT, sigquit == SIG_IGN ? SIG_IGN : SIG_DFL);
      signal (SIGTERM, sigterm == SIG_IGN ? SIG_IGN : SIG_DFL);
      signal (SIGHUP, sighup == SIG_IGN ? SIG_IGN : SIG_DFL);
      sigprocmask (SIG_SETMASK, &before, NULL);
      dup2 (out[1], 1);
      dup2 (one_pipe ? out[1] : err[1], 2);
      char **command = simple_command (argv, argc);
      if (!command)
        command = argv;
      const char *search = getenv ("PATH");
      if (tracing && !nested)
        {
          if (runs_make (argv[argc - 1], ctx->make.p, ctx->make.n))
            {
              /* Leave the sub-make untraced: its own commands get their own filters. */
              struct msg m;
              encode_sub_make (&m);
              send_msg (sock, &m);
            }
          else
            {
              static struct misses misses;
              const char *helper = getenv (ENV_PRELOAD);
              leave_make_ring (helper);
              const char *rest = search;
              if (search && helper && *helper && !strchr (command[0], '/'))
                rest = skip_missing (command[0], search, &misses);
              int ring = -1;
              int error = start_tracing (sock, &ring);
              if (error)
                {
                  struct msg m;
                  encode_trace_refused (&m, strerror (error));
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
  sigprocmask (SIG_SETMASK, &before, NULL);
  close (out[1]);
  close (err[1]);
  int tee_error = pump_output (sock, child, out[0], err[0], tee);

  int status = 0;
  struct rusage usage;
  memset (&usage, 0, sizeof usage);
  while (wait4 (child, &status, 0, &usage) < 0 && errno == EINTR)
    ;
  struct msg m;
  struct msg left;
  left_behind (&left);
  encode_command_end (&m, status, now_ns (), (long long) usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec,
                      (long long) usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec, usage.ru_maxrss,
                      left.data, left.len);
  free (left.data);
  send_msg (sock, &m);
  free (m.data);
  close (sock);

  if (WIFSIGNALED (status))
    {
      signal (WTERMSIG (status), SIG_DFL);
      kill (getpid (), WTERMSIG (status));
    }
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0 && tee_error)
    {
      /* Written straight to stdout, as under make, the command would have failed on
         this error: make must see the line fail (the record keeps what it did). */
      fprintf (stderr, "makescope: error: the command's output could not be written: %s\n",
               strerror (tee_error));
      return 1;
    }
  return WIFEXITED (status) ? WEXITSTATUS (status) : 127;
}

int main (int argc, char **argv)
{
  const char *dir = getenv (ENV_SHELL_DIR);
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
  keep_makefiles_variable ();

  const char *ctx_raw = getenv (ENV_CTX);
  struct job_context ctx;
  int ours = ctx_raw && ctx_parse (ctx_raw, &ctx) == 0 && ctx.make_pid == (long) getppid ();
  int sock = ours ? connect_recorder (getenv (ENV_SOCK)) : -1;
  if (sock < 0)
    exec_or_die (argv, argc);
  int code = run (argv, argc, ctx_raw, &ctx, sock);
  if (code < 0)
    exec_or_die (argv, argc);  /* the recorder is gone: run the command as make would */
  return code;
}
