/* The wire format for the C sides (the make plugin, the shim, the fast path's helper):
 * the one C definition of what travels between a build's processes and the recorder.
 * src/protocol.rs is the Rust one; a test (protocol.rs, `c_side`) compiles
 * src/protocol_test.c against this header and decodes what it encodes, so the two
 * cannot drift apart unnoticed.
 *
 * It holds: the message kinds, one encoder per kind (the only place C writes a field
 * order), every environment variable through which makescope's processes talk, and the
 * job context (MAKESCOPE_CTX) with its encoder (the plugin's) and parser (the shim's).
 * A message is one kind byte, then fields; a field is a little-endian u32 length and
 * that many bytes; numbers travel as decimal text.
 *
 * It must never hold policy: what a shim or the plugin decides stays with them.
 */
#ifndef MAKESCOPE_PROTOCOL_H
#define MAKESCOPE_PROTOCOL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- environment ------------------------------------------------------------------- */

/* Every variable makescope's processes set for each other starts with this; the
   recorder leaves them out of the environments it records. */
#define ENV_PREFIX "MAKESCOPE_"
/* The recorder's socket. */
#define ENV_SOCK "MAKESCOPE_SOCK"
/* The job's context, exported by the plugin into every recipe line (format below). */
#define ENV_CTX "MAKESCOPE_CTX"
/* Set in a traced command's environment: its descendants are already under a filter. */
#define ENV_TRACED "MAKESCOPE_TRACED"
/* `1` when commands' files are to be traced. */
#define ENV_TRACE "MAKESCOPE_TRACE"
/* `1` when the shim passes output through as well (`--plain`). */
#define ENV_TEE "MAKESCOPE_TEE"
/* `1` when make should not echo commands (concise output). */
#define ENV_SILENT "MAKESCOPE_SILENT"
/* Where the plugin leaves make's database dumps. */
#define ENV_MAKEDB_DIR "MAKESCOPE_MAKEDB_DIR"
/* The shim binary, for the plugin's links to point at. */
#define ENV_SHIM "MAKESCOPE_SHIM"
/* The directory of links to the shim (`<dir>/abs/bin/bash`, `<dir>/rel/bash`). */
#define ENV_SHELL_DIR "MAKESCOPE_SHELL_DIR"
/* The makefile that loads the plugin, which MAKEFILES names; the shim puts it back in
   MAKEFILES when a makefile took it out. Unset: the plugin came with --eval. */
#define ENV_MAKEFILE "MAKESCOPE_MAKEFILE"
/* The seccomp program the shim's child installs (a `struct sock_filter` array). */
#define ENV_FILTER "MAKESCOPE_FILTER"
/* The fast path's helper (src/trace/preload.c); unset or empty: every call is trapped. */
#define ENV_PRELOAD "MAKESCOPE_PRELOAD"
/* For the helper: the descriptor of its ring. */
#define ENV_TRACE_RING "MAKESCOPE_TRACE_RING"
/* For the helper: the address (hex) of its trusted page. */
#define ENV_TRACE_PAGE "MAKESCOPE_TRACE_PAGE"
/* For the helper: no filter under this process (make's own ring). */
#define ENV_TRACE_UNFILTERED "MAKESCOPE_TRACE_UNFILTERED"
/* For the helper: leave glibc's internal opens alone. */
#define ENV_TRACE_NO_REDIRECT "MAKESCOPE_TRACE_NO_REDIRECT"
/* Set by a test: the shim stops itself (SIGSTOP) just before it forks the command, its
   signals' forwarding in place, for the test to signal it there. */
#define ENV_SHIM_STOP "MAKESCOPE_SHIM_STOP"
/* The setting the shim appends to ASAN_OPTIONS along with the helper (which the
   recorder takes back out of recorded environments). */
#define ASAN_LINK_ORDER "verify_asan_link_order=0"

/* ---- messages ---------------------------------------------------------------------- */

enum {
  MAKE_START = 1, MAKE_END = 2,
  COMMAND_START = 10, OUTPUT = 11, COMMAND_END = 12, LISTENER = 13, TRACE_REFUSED = 14, SUB_MAKE = 15,
  PART = 16, PART_END = 17,
  ACK = 20
};

/* The largest packet a client sends; output is cut into chunks below this, and a longer
   message (a command's arguments and environment: up to what execve takes) goes in
   parts (send_message). */
#define MAX_MESSAGE (60 * 1024)

struct msg { char *data; size_t len, cap; };

static inline void msg_start (struct msg *m, int kind, size_t cap)
{
  m->cap = cap;
  m->len = 0;
  m->data = malloc (m->cap);
  if (!m->data)
    abort ();
  m->data[m->len++] = (char) kind;
}
/* Room for `more` bytes after the current end. */
static inline void msg_reserve (struct msg *m, size_t more)
{
  if (m->len + more > m->cap)
    {
      m->cap = (m->len + more) * 2;
      m->data = realloc (m->data, m->cap);
      if (!m->data)
        abort ();
    }
}
static inline void put (struct msg *m, const void *data, size_t len)
{
  uint32_t n = (uint32_t) len;
  msg_reserve (m, 4 + len);
  memcpy (m->data + m->len, &n, 4);   /* little-endian on every target we build for */
  if (len)
    memcpy (m->data + m->len + 4, data, len);
  m->len += 4 + len;
}
static inline void put_str (struct msg *m, const char *s) { put (m, s, s ? strlen (s) : 0); }
static inline void put_num (struct msg *m, long long n)
{
  char b[32];
  put (m, b, (size_t) snprintf (b, sizeof b, "%lld", n));
}
/* A field of the first `n` strings of `items` (all of them, to the NULL, when n < 0),
   NUL-separated. */
static inline void put_list (struct msg *m, char *const *items, long n)
{
  size_t total = 0;
  long count = 0;
  for (; n < 0 ? items[count] != NULL : count < n; count++)
    total += strlen (items[count]) + 1;
  total -= total ? 1 : 0;
  uint32_t len = (uint32_t) total;
  msg_reserve (m, 4 + total + 1);
  memcpy (m->data + m->len, &len, 4);
  char *p = m->data + m->len + 4;
  for (long i = 0; i < count; i++)
    {
      size_t k = strlen (items[i]);
      memcpy (p, items[i], k);
      p += k;
      *p++ = 0;   /* the last one lands in the spare byte and is not counted */
    }
  m->len += 4 + total;
}

static inline long long now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One encoder per kind, in the order of src/protocol.rs's structs of the same names.
   `m` is started here; the caller sends it and frees m->data. */

/* plugin: a make process started (and waits for ACK). `argv`: NUL-separated, `argv_len`
   bytes; `context`: the recipe's MAKESCOPE_CTX that started this make (NULL: none). */
static inline void encode_make_start (struct msg *m, long pid, long ppid, long makelevel, const char *cwd,
                                      const char *argv, size_t argv_len, const char *context, long long time_ns)
{
  msg_start (m, MAKE_START, 4096);
  put_num (m, pid);
  put_num (m, ppid);
  put_num (m, makelevel);
  put_str (m, cwd);
  put (m, argv, argv_len);
  put_str (m, context);
  put_num (m, time_ns);
}

/* plugin: a make process is exiting. `dump`: its database dump (NULL: none). */
static inline void encode_make_end (struct msg *m, long pid, long long time_ns, const char *default_goal,
                                    const char *makefiles, const char *dump)
{
  msg_start (m, MAKE_END, 4096);
  put_num (m, pid);
  put_num (m, time_ns);
  put_str (m, default_goal);
  put_str (m, makefiles);
  put_str (m, dump);
}

/* shim: a recipe line starts. `argv` (argc words): the shell, its flags, the command;
   `environment`: NULL-terminated (NULL: none). Longer than a packet: send_message. */
static inline void encode_command_start (struct msg *m, long shim_pid, const char *context, char *const *argv,
                                         int argc, const char *cwd, char *const *environment,
                                         long long time_ns, int target_existed, int wants_ack)
{
  msg_start (m, COMMAND_START, 4096);
  put_num (m, shim_pid);
  put_str (m, context);
  put_list (m, argv, argc);
  put_str (m, cwd);
  if (environment)
    put_list (m, environment, -1);
  else
    put (m, "", 0);
  put_num (m, time_ns);
  put_num (m, target_existed ? 1 : 0);
  put_str (m, wants_ack ? "a" : "");
}

/* shim: output of the command on `stream` (1 stdout, 2 stderr). */
static inline void encode_output (struct msg *m, int stream, const void *bytes, size_t len)
{
  msg_start (m, OUTPUT, 1 + 4 + 1 + 4 + len);
  put (m, stream == 2 ? "2" : "1", 1);
  put (m, bytes, len);
}

/* shim: the command finished. `status`: wait(2)'s; `left_behind`: NUL-separated
   `pid argv0` entries, `left_len` bytes. */
static inline void encode_command_end (struct msg *m, int status, long long time_ns, long long user_us,
                                       long long system_us, long long max_rss_kib, const char *left_behind,
                                       size_t left_len)
{
  msg_start (m, COMMAND_END, 256 + left_len);
  put_num (m, status);
  put_num (m, time_ns);
  put_num (m, user_us);
  put_num (m, system_us);
  put_num (m, max_rss_kib);
  put (m, left_behind, left_len);
}

/* shim's child: the seccomp listener (and the fast path's ring) follow as SCM_RIGHTS. */
static inline void encode_listener (struct msg *m, long child_pid)
{
  msg_start (m, LISTENER, 64);
  put_num (m, child_pid);
}

/* shim's child: the filter could not be installed. */
static inline void encode_trace_refused (struct msg *m, const char *reason)
{
  msg_start (m, TRACE_REFUSED, 256);
  put_str (m, reason);
}

/* shim's child: the line runs a sub-make, so it is not filtered itself. */
static inline void encode_sub_make (struct msg *m)
{
  msg_start (m, SUB_MAKE, 16);
}

/* Send one packet: 0, or -errno. */
static inline int send_packet (int sock, struct iovec *iov, int count)
{
  struct msghdr header = { .msg_iov = iov, .msg_iovlen = (size_t) count };
  ssize_t sent;
  while ((sent = sendmsg (sock, &header, MSG_NOSIGNAL)) < 0 && errno == EINTR)
    ;
  return sent < 0 ? -errno : 0;
}

/* Send `m` on `sock`: one packet when it fits in MAX_MESSAGE; else packets of
   MAX_MESSAGE bytes, each the kind PART (PART_END for the last) and the next piece of
   `m`, which the recorder puts back together. 0, or -errno. */
static inline int send_message (int sock, const struct msg *m)
{
  if (m->len <= MAX_MESSAGE)
    return send_packet (sock, (struct iovec[]) { { m->data, m->len } }, 1);
  size_t piece = MAX_MESSAGE - 1;
  for (size_t at = 0; at < m->len; at += piece)
    {
      size_t n = m->len - at < piece ? m->len - at : piece;
      char kind = at + n < m->len ? PART : PART_END;
      int error = send_packet (sock, (struct iovec[]) { { &kind, 1 }, { m->data + at, n } }, 2);
      if (error)
        return error;
    }
  return 0;
}

/* A connection to the recorder's socket at PATH, or -1. */
static inline int connect_recorder (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (!path || strlen (path) >= sizeof addr.sun_path)
    return -1;
  strcpy (addr.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      close (fd);
      fd = -1;
    }
  return fd;
}

/* ---- the job context (MAKESCOPE_CTX) ----------------------------------------------- */

/* Fields separated by CTX_SEP, in the order of struct job_context; the first is the
   format's version. Text fields are not NUL-terminated where they are parsed. */
#define CTX_SEP '\x1f'
#define CTX_VERSION 1

struct ctx_text { const char *p; size_t n; };

struct job_context
{
  long make_pid;               /* the make process that runs the job */
  unsigned long job;           /* its job number: the lines of one recipe share it */
  struct ctx_text target;      /* $@ */
  struct ctx_text recipe_file; /* the recipe's makefile (empty when make cannot say) */
  unsigned long recipe_line;   /* the recipe's first line there (0: unknown) */
  struct ctx_text newer;       /* $? (the plugin cuts it short) */
  struct ctx_text shell;       /* the makefile's own SHELL */
  struct ctx_text shell_flags; /* .SHELLFLAGS */
  unsigned make_level;         /* MAKELEVEL */
  struct ctx_text make;        /* $(MAKE) */
  unsigned lines;              /* the recipe's lines as make wrote them (0: unknown) */
  unsigned flags;              /* CTX_SERIAL | CTX_SILENT (may be missing: then 0) */
};

/* job_context.flags: its make runs one job at a time (-j1, no jobserver), so a new job
   of that make means the one before is over; make runs every line of the recipe
   silently (`@`, also from a leading variable, `-s`, `.SILENT`). */
#define CTX_SERIAL 1u
#define CTX_SILENT 2u

/* NUL-terminated text as a context field. */
static inline struct ctx_text ctx_text (const char *s) { return (struct ctx_text) { s, s ? strlen (s) : 0 }; }

/* The bytes ctx_encode needs for `c`, its terminating NUL included. */
static inline size_t ctx_encoded_size (const struct job_context *c)
{
  return c->target.n + c->recipe_file.n + c->newer.n + c->shell.n + c->shell_flags.n + c->make.n
         + 6 * 24 + 16;
}

/* Write `c` to `out` (ctx_encoded_size bytes). */
static inline void ctx_encode (const struct job_context *c, char *out, size_t cap)
{
  snprintf (out, cap, "%d\x1f%ld\x1f%lu\x1f%.*s\x1f%.*s\x1f%lu\x1f%.*s\x1f%.*s\x1f%.*s\x1f%u\x1f%.*s\x1f%u\x1f%u",
            CTX_VERSION, c->make_pid, c->job, (int) c->target.n, c->target.p, (int) c->recipe_file.n,
            c->recipe_file.p, c->recipe_line, (int) c->newer.n, c->newer.p, (int) c->shell.n, c->shell.p,
            (int) c->shell_flags.n, c->shell_flags.p, c->make_level, (int) c->make.n, c->make.p, c->lines, c->flags);
}

/* Read a MAKESCOPE_CTX value: 0, or -1 if it is not one (of this version). Text fields
   point into `value`. $(MAKE), the line count and the flags may be missing (then
   empty, 0, 0). */
static inline int ctx_parse (const char *value, struct job_context *c)
{
  struct ctx_text f[13];
  int n = 0;
  const char *p = value;
  while (n < 13)
    {
      const char *end = strchr (p, CTX_SEP);
      f[n].p = p;
      f[n].n = end ? (size_t) (end - p) : strlen (p);
      n++;
      if (!end)
        break;
      p = end + 1;
    }
  if (n < 10 || f[0].n != 1 || f[0].p[0] != '0' + CTX_VERSION)
    return -1;
  c->make_pid = strtol (f[1].p, NULL, 10);
  c->job = strtoul (f[2].p, NULL, 10);
  c->target = f[3];
  c->recipe_file = f[4];
  c->recipe_line = strtoul (f[5].p, NULL, 10);
  c->newer = f[6];
  c->shell = f[7];
  c->shell_flags = f[8];
  c->make_level = (unsigned) strtoul (f[9].p, NULL, 10);
  c->make = n > 10 ? f[10] : (struct ctx_text) { "", 0 };
  c->lines = n > 11 ? (unsigned) strtoul (f[11].p, NULL, 10) : 0;
  c->flags = n > 12 ? (unsigned) strtoul (f[12].p, NULL, 10) : 0;
  return 0;
}

#endif
