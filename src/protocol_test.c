/* A test driver for the C side of the wire format (src/protocol.h) and the shim's
 * headers: run by the `c_side` tests in src/protocol.rs (compiled with the system cc
 * into a temporary directory), never built into makescope. Each mode writes what the
 * production code would produce, for the Rust side to decode and check:
 *
 *   messages                 one message of each kind, each as a u32 length and bytes
 *   env                      NAME=VALUE for each environment name and setting
 *   context-encode           a job context as the plugin writes it
 *   context-parse VALUE      the shim's reading of VALUE, one field a line (or -1)
 *   runs-make LINE MAKE      1 or 0: does the shim take LINE for a sub-make's
 *   real-shell DIR PATH      the real shell behind the link PATH, or nothing
 *   enable-fast-path HELPER  the environment after enable_fast_path (fd 7), NUL-separated
 *   leave-make-ring HELPER   the environment after leave_make_ring, NUL-separated
 *   ring-kinds               NAME=ID for each access kind ring.h's records carry
 */
#define _GNU_SOURCE
#include "protocol.h"
#include "shim/line.h"
#include "trace/fastpath.h"

extern char **environ;

static void emit (struct msg *m)
{
  uint32_t n = (uint32_t) m->len;
  fwrite (&n, 4, 1, stdout);
  fwrite (m->data, 1, m->len, stdout);
  free (m->data);
}

static const char CONTEXT[] = "1\x1f" "77\x1f" "3\x1f" "all\x1f" "Makefile\x1f" "12\x1f" "a b\x1f"
                              "/bin/bash\x1f" "-e -c\x1f" "1\x1f" "make\x1f" "2\x1f" "2";

static void messages (void)
{
  struct msg m;
  static const char argv[] = "make\0-C\0sub";
  encode_make_start (&m, 101, 100, 2, "/src/dir", argv, sizeof argv - 1, CONTEXT, 1700000000123456789LL);
  emit (&m);
  encode_make_start (&m, 102, 1, 0, "/top", "make", 4, NULL, 5);
  emit (&m);
  encode_make_end (&m, 101, 1700000000999999999LL, "all", " Makefile sub.mk", "/tmp/d/0123.mkdb");
  emit (&m);
  encode_make_end (&m, 102, 6, "", "", NULL);
  emit (&m);
  char *words[] = { "/bin/bash", "-e", "-c", "echo hi", NULL };
  char *env[] = { "PATH=/bin", "HOME=/h", "EMPTY=", NULL };
  encode_command_start (&m, 202, CONTEXT, words, 4, "/src", env, 1700000001000000000LL, 1, 1);
  emit (&m);
  encode_command_start (&m, 203, "", words, 3, "", NULL, 7, 0, 0);
  emit (&m);
  encode_output (&m, 2, "err\0bytes", 9);
  emit (&m);
  encode_output (&m, 1, "out", 3);
  emit (&m);
  static const char left[] = "303 sleep 10\0" "304 daemon";
  encode_command_end (&m, 256, 1700000002000000000LL, 1234, 567, 8910, left, sizeof left - 1);
  emit (&m);
  encode_command_end (&m, -1, 8, 0, 0, 0, "", 0);
  emit (&m);
  encode_listener (&m, 404);
  emit (&m);
  encode_trace_refused (&m, "Operation not permitted");
  emit (&m);
  encode_sub_make (&m);
  emit (&m);
}

static void env (void)
{
  static const char *names[][2] = {
    { "ENV_PREFIX", ENV_PREFIX }, { "ENV_SOCK", ENV_SOCK }, { "ENV_CTX", ENV_CTX },
    { "ENV_TRACED", ENV_TRACED }, { "ENV_TRACE", ENV_TRACE }, { "ENV_TEE", ENV_TEE },
    { "ENV_SILENT", ENV_SILENT }, { "ENV_MAKEDB_DIR", ENV_MAKEDB_DIR }, { "ENV_SHIM", ENV_SHIM },
    { "ENV_SHELL_DIR", ENV_SHELL_DIR }, { "ENV_MAKEFILE", ENV_MAKEFILE },
    { "ENV_FILTER", ENV_FILTER }, { "ENV_PRELOAD", ENV_PRELOAD },
    { "ENV_TRACE_RING", ENV_TRACE_RING }, { "ENV_TRACE_PAGE", ENV_TRACE_PAGE },
    { "ENV_TRACE_UNFILTERED", ENV_TRACE_UNFILTERED }, { "ENV_TRACE_NO_REDIRECT", ENV_TRACE_NO_REDIRECT },
    { "ENV_SHIM_STOP", ENV_SHIM_STOP },
    { "ASAN_LINK_ORDER", ASAN_LINK_ORDER }, { "FAST_PATH_PAGE_HEX", FAST_PATH_PAGE_HEX },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    printf ("%s=%s\n", names[i][0], names[i][1]);
  printf ("MAX_MESSAGE=%d\n", MAX_MESSAGE);
}

static void context_encode (void)
{
  struct job_context c = {
    .make_pid = 4242, .job = 17, .target = ctx_text ("out/x.o"), .recipe_file = ctx_text ("rules.mk"),
    .recipe_line = 33, .newer = { "x.c y.h TRUNCATED", 7 }, .shell = ctx_text ("/bin/sh"),
    .shell_flags = ctx_text ("-ec"), .make_level = 2, .make = ctx_text ("/usr/bin/make"),
    .lines = 3, .flags = CTX_SERIAL | CTX_SILENT,
  };
  size_t cap = ctx_encoded_size (&c);
  char *out = malloc (cap);
  ctx_encode (&c, out, cap);
  fputs (out, stdout);
  free (out);
}

static void context_parse (const char *value)
{
  struct job_context c;
  if (ctx_parse (value, &c) != 0)
    {
      puts ("-1");
      return;
    }
  printf ("%ld\n%lu\n%.*s\n%.*s\n%lu\n%.*s\n%.*s\n%.*s\n%u\n%.*s\n%u\n%u\n", c.make_pid, c.job, (int) c.target.n,
          c.target.p, (int) c.recipe_file.n, c.recipe_file.p, c.recipe_line, (int) c.newer.n, c.newer.p,
          (int) c.shell.n, c.shell.p, (int) c.shell_flags.n, c.shell_flags.p, c.make_level, (int) c.make.n,
          c.make.p, c.lines, c.flags);
}

static void print_environment (void)
{
  for (char **e = environ; *e; e++)
    fwrite (*e, 1, strlen (*e) + 1, stdout);
}

int main (int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp (mode, "messages"))
    messages ();
  else if (!strcmp (mode, "env"))
    env ();
  else if (!strcmp (mode, "context-encode"))
    context_encode ();
  else if (!strcmp (mode, "context-parse") && argc == 3)
    context_parse (argv[2]);
  else if (!strcmp (mode, "runs-make") && argc == 4)
    printf ("%d", runs_make (argv[2], argv[3], strlen (argv[3])));
  else if (!strcmp (mode, "real-shell") && argc == 4)
    {
      const char *real = real_shell (argv[2], argv[3]);
      fputs (real ? real : "", stdout);
    }
  else if (!strcmp (mode, "enable-fast-path") && argc == 3)
    {
      enable_fast_path (argv[2], 7);
      print_environment ();
    }
  else if (!strcmp (mode, "leave-make-ring") && argc == 3)
    {
      leave_make_ring (argv[2]);
      print_environment ();
    }
  else if (!strcmp (mode, "ring-kinds"))
    printf ("read=%d\nwrite=%d\ncreate=%d\ntruncate=%d\nappend=%d\nstat=%d\nprobe=%d\n", RING_READ,
            RING_WRITE, RING_CREATE, RING_TRUNCATE, RING_APPEND, RING_STAT, RING_PROBE);
  else
    {
      fprintf (stderr, "protocol_test: unknown mode %s\n", mode);
      return 2;
    }
  return 0;
}
