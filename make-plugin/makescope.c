/* makescope's GNU make plugin (make 4.3 loadable object).
 *
 * It hands make's own facts to the recorder and thinks about nothing:
 *  - every recipe line runs through the shim: a pattern-specific `SHELL` names a link to
 *    the shim whose path spells the makefile's own SHELL (looked up in make's global
 *    scope, so `SHELL := /bin/bash` and command-line SHELL=… are kept):
 *    `<dir>/abs/bin/bash` for /bin/bash. One word, so .ONESHELL (which does not split
 *    SHELL) works, and make's bourne-shell checks see `bash`. The link is the value
 *    only where make runs a line; a recipe's own `$(SHELL)` is the makefile's. Under
 *    -q make keeps its own SHELL (see shell_fn);
 *  - every recipe's environment gets MAKESCOPE_CTX: the make pid, a job number, $@,
 *    the recipe's makefile and line, $?, SHELL and .SHELLFLAGS, and whether the make
 *    runs one job at a time and the recipe's every line silently (ctx_fn);
 *  - each make process announces itself when it starts (and waits to be acknowledged,
 *    so the recorder knows it before any of its jobs) and when it exits, with a dump of
 *    its database for `makescope targets --recursive`.
 * makescope loads it through a makefile it names in MAKEFILES (makescope_build_setup),
 * or with --eval when the command line sets MAKEFILES.
 * Loaded on its own (`load makescope.so` outside makescope) it only provides
 * $(python …) from python.c.
 *
 * The messages, the environment's names and the job context's format are
 * src/protocol.h's. make 4.3 internals used: the exported symbols below, the name of
 * construct_command_argv on the stack, and the first fields of `struct file` (up to
 * command_flags), `struct commands` (up to its line count) and
 * `struct variable_set_list` (filedef.h, commands.h, variable.h of make 4.3).
 */
#define _GNU_SOURCE
#include <gnumake.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../src/protocol.h"

int plugin_is_GPL_compatible;

struct variable_set_list { struct variable_set_list *next; void *set; int next_is_parent; };
struct floc43 { const char *filenm; unsigned long lineno; unsigned long offset; };
struct commands43
{
  struct floc43 fileinfo;
  char *commands, **command_lines;
  unsigned char *lines_flags;
  unsigned short ncommand_lines;
};
struct file43
{
  const char *name, *hname, *vpath;
  void *deps;
  struct commands43 *cmds;
  const char *stem;
  void *also_make, *prev, *last, *renamed, *variables, *pat_variables, *parent, *double_colon;
  uintmax_t last_mtime, mtime_before_update;
  unsigned int considered;
  int command_flags;
};
#define COMMANDS43_SILENT 2
extern struct variable_set_list *current_variable_set_list;
extern struct file43 *lookup_file (const char *name);
extern int run_silent;
extern int one_shell __attribute__ ((weak));
extern unsigned int job_slots __attribute__ ((weak));
extern int jobserver_enabled (void) __attribute__ ((weak));
extern unsigned int makelevel;
extern void print_variable_data_base (void);
extern void print_rule_data_base (void);
extern void print_file_data_base (void);

int makescope_python_setup (const gmk_floc *floc) __attribute__ ((weak));

#define NEWER_MAX 4096  /* $? travels in every process's environment: keep it small */

static int sock = -1;
static int make43;  /* the struct layouts above are make 4.3's: only then are they read */
static const char *shim;
static const char *shell_dir;
static int silent;
/* run_silent as the makefile and the command line left it (-s, `.SILENT:`), before
   silent mode set it (-1: not read yet). */
static int user_run_silent = -1;
static unsigned long job_serial;
/* Whether the caller of $(makescope-shell x) can be told from the stack (see shell_fn). */
static int stack_tells;

static void send_msg (struct msg *m)
{
  if (sock >= 0 && send_message (sock, m) < 0)
    {
      close (sock);
      sock = -1;
    }
  free (m->data);
}

/* Expand TEXT in make's global scope, whatever target we are expanding for. */
static char *global_expand (const char *text)
{
  struct variable_set_list *saved = current_variable_set_list, *global = saved;
  while (global->next)
    global = global->next;
  current_variable_set_list = global;
  char *value = gmk_expand (text);
  current_variable_set_list = saved;
  return value;
}

/* Make sure PATH (a link to the shim) exists, with its directories. */
static void ensure_link (char *path)
{
  static char last[4096];
  if (!strcmp (path, last) || access (path, F_OK) == 0)
    return;
  for (char *slash = strchr (path + strlen (shell_dir) + 1, '/'); slash; slash = strchr (slash + 1, '/'))
    {
      *slash = '\0';
      mkdir (path, 0700);
      *slash = '/';
    }
  if (symlink (shim, path) == 0 || errno == EEXIST)
    snprintf (last, sizeof last, "%s", path);
}

/* Whether make's exported FUNCTION is among the callers of the caller. */
static int on_stack (const char *function)
{
  void *frames[64];
  int n = backtrace (frames, 64);
  for (int i = 1; i < n; i++)
    {
      Dl_info info;
      if (dladdr ((char *) frames[i] - 1, &info) && info.dli_sname
          && !strcmp (info.dli_sname, function))
        return 1;
    }
  return 0;
}

/* $(makescope-shell x): what make should run instead of the makefile's SHELL.
   make expands $(SHELL) to run a recipe line in construct_command_argv (job.c), and
   there it gets the shim's link; everywhere else (the recipe's own `$(SHELL)`, an
   exported SHELL in its environment) it gets the makefile's SHELL, as plain make
   would show it. Where the stack cannot tell (stack_tells is 0: make without that
   exported symbol, or frames the unwinder cannot walk), the link everywhere. */
static char *shell_fn (const char *name, unsigned int argc, char **argv)
{
  if (user_run_silent < 0)
    user_run_silent = run_silent;
  if (silent)
    run_silent = 1;     /* make's own echo of each command: the recorder prints instead */
  char *real = global_expand ("$(SHELL)");
  if (stack_tells && !on_stack ("construct_command_argv"))
    return real;
  /* Under -q make runs no line but recursive ones, and answers "out of date" for any
     line it would have given a shell: with any SHELL but /bin/sh (its default) that is
     every line, even one that expands to nothing but a backslash-newline, which make
     itself drops. So make keeps the makefile's own shell: its answers stay make's,
     and a recursive line runs unrecorded. */
  char *letters = global_expand ("$(firstword x$(MAKEFLAGS))");
  int question = strchr (letters, 'q') != NULL;
  gmk_free (letters);
  if (question)
    return real;
  const char *kind = real[0] == '/' ? "/abs" : "/rel/";
  char *r = gmk_alloc (strlen (shell_dir) + strlen (kind) + strlen (real) + 1);
  sprintf (r, "%s%s%s", shell_dir, kind, real);
  gmk_free (real);
  char *first = strdup (r), *end = strpbrk (first + strlen (shell_dir), " \t");
  if (end)
    *end = '\0';
  ensure_link (first);
  free (first);
  return r;
}

/* The end of the variable reference at P (`$(NAME)`, `${NAME}`, names within it
   references too: `$(am__v_at_$(V))`), or NULL when P starts none: a function call
   (`$(if …)`, `$(shell …)`, whose name ends at a blank) or no reference at all. */
static const char *variable_reference (const char *p)
{
  if (p[0] != '$' || (p[1] != '(' && p[1] != '{'))
    return NULL;
  char open = p[1], close = open == '(' ? ')' : '}';
  int depth = 1;
  const char *end = p + 2;
  for (; *end && depth; end++)
    if (*end == open)
      depth++;
    else if (*end == close)
      depth--;
    else if (*end == ' ' || *end == '\t' || *end == ',')
      return NULL;
  return depth ? NULL : end;
}

/* Whether VALUE, a variable's value as written, calls no function: expanding it
   again cannot act (`$(shell …)`, `$(info …)`, `$(file …)`, `$(eval …)`). */
static int calls_nothing (const char *value)
{
  for (const char *p = strchr (value, '$'); p; p = strchr (p + 1, '$'))
    if (p[1] == '$')
      p++;
    else if ((p[1] == '(' || p[1] == '{') && !variable_reference (p))
      return 0;
  return 1;
}

/* Whether LINE, a recipe line as the makefile wrote it (its own `@-+` prefix read by
   make into its flags), gets a `@` from the variables it starts with (`$(Q)cmd`,
   automake's `$(AM_V_at)`), which make reads after expanding it. A variable whose
   value calls a function is not expanded here (it could act twice): it counts as not
   silent. */
static int leading_at (const char *line)
{
  const char *p = line;
  for (int refs = 0; refs < 4; refs++)
    {
      while (*p == ' ' || *p == '\t' || *p == '-' || *p == '+')
        p++;
      if (*p == '@')
        return 1;
      const char *end = variable_reference (p);
      if (!end)
        return 0;
      size_t n = end - p;
      char *ref = malloc (n + 8);
      sprintf (ref, "$(value %.*s)", (int) (n - 3), p + 2);
      char *raw = gmk_expand (ref);
      /* Undefined or empty: nothing to expand (and no warning to cause). */
      int unsafe = !calls_nothing (raw), blank = !*raw;
      gmk_free (raw);
      sprintf (ref, "%.*s", (int) n, p);
      char *value = unsafe ? NULL : blank ? NULL : gmk_expand (ref);
      free (ref);
      if (unsafe)
        return 0;
      if (!value)
        {
          p = end;
          continue;
        }
      const char *v = value;
      while (*v == ' ' || *v == '\t' || *v == '-' || *v == '+')
        v++;
      int at = *v == '@', empty = !*v;
      gmk_free (value);
      if (at)
        return 1;
      if (!empty)
        return 0;
      p = end;
    }
  return 0;
}

/* Whether make runs every line of F's recipe silently. */
static int recipe_silent (const struct file43 *f)
{
  if (!f || !f->cmds || !f->cmds->ncommand_lines)
    return 0;
  if (user_run_silent > 0 || (f->command_flags & COMMANDS43_SILENT))
    return 1;
  unsigned lines = &one_shell && one_shell ? 1 : f->cmds->ncommand_lines;
  for (unsigned i = 0; i < lines; i++)
    if (!(f->cmds->lines_flags[i] & COMMANDS43_SILENT)
        && !leading_at (f->cmds->command_lines[i]))
      return 0;
  return 1;
}

/* $(makescope-ctx x): this job's context, exported as MAKESCOPE_CTX. */
static char *ctx_fn (const char *name, unsigned int argc, char **argv)
{
  char *target = gmk_expand ("$@");
  char *newer = gmk_expand ("$?");
  char *flags = gmk_expand ("$(.SHELLFLAGS)");
  char *shell = global_expand ("$(SHELL)");
  char *make = gmk_expand ("$(MAKE)");
  struct file43 *f = *target && make43 ? lookup_file (target) : NULL;
  const char *file = f && f->cmds && f->cmds->fileinfo.filenm ? f->cmds->fileinfo.filenm : "";
  unsigned long line = f && f->cmds ? f->cmds->fileinfo.lineno : 0;
  /* make has chopped the recipe into lines before it runs the first (new_job); under
     .ONESHELL they all run in one shell. */
  unsigned lines = f && f->cmds ? f->cmds->ncommand_lines : 0;
  if (lines > 1 && &one_shell && one_shell)
    lines = 1;
  if (user_run_silent < 0)
    user_run_silent = run_silent;
  unsigned job_flags = 0;
  if (&job_slots && &jobserver_enabled && job_slots == 1 && !jobserver_enabled ())
    job_flags |= CTX_SERIAL;
  /* Only the printer asks (with --plain make's own echo stays, and nothing here may
     risk a difference from make). */
  if (silent && recipe_silent (f))
    job_flags |= CTX_SILENT;
  struct job_context c = {
    .make_pid = getpid (), .job = ++job_serial, .target = ctx_text (target), .recipe_file = ctx_text (file),
    .recipe_line = line, .newer = ctx_text (newer), .shell = ctx_text (shell), .shell_flags = ctx_text (flags),
    .make_level = makelevel, .make = ctx_text (make), .lines = lines, .flags = job_flags,
  };
  if (c.newer.n > NEWER_MAX)
    c.newer.n = NEWER_MAX;
  size_t cap = ctx_encoded_size (&c);
  char *r = gmk_alloc (cap);
  ctx_encode (&c, r, cap);
  gmk_free (target);
  gmk_free (newer);
  gmk_free (flags);
  gmk_free (shell);
  gmk_free (make);
  return r;
}

static char *read_all (const char *path, size_t *len)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc (cap);
  ssize_t got;
  while (buf && (got = read (fd, buf + n, cap - n)) > 0)
    if ((n += got) == cap)
      buf = realloc (buf, cap *= 2);
  close (fd);
  *len = n;
  return buf;
}

/* A name for this make's database that changes when its makefiles or arguments do. */
static unsigned long long dump_key (const char *makefiles)
{
  unsigned long long h = 1469598103934665603ULL;
#define MIX(p, n) do { const unsigned char *q_ = (const unsigned char *) (p); \
    for (size_t i_ = 0; i_ < (n); i_++) h = (h ^ q_[i_]) * 1099511628211ULL; } while (0)
  size_t len = 0;
  char *cmdline = read_all ("/proc/self/cmdline", &len);
  /* Every argument but the one that loads this plugin: its path is the build's private
     directory, new on every run, and the dump is the same. */
  for (size_t i = 0; cmdline && i < len; i += strlen (cmdline + i) + 1)
    {
      const char *arg = cmdline + i;
      size_t n = strlen (arg);
      static const char load[] = "--eval=load ", so[] = "/makescope.so";
      if (!strncmp (arg, load, sizeof load - 1) && n >= sizeof so - 1
          && !strcmp (arg + n - (sizeof so - 1), so))
        continue;
      MIX (arg, n + 1);
    }
  free (cmdline);
  char cwd[4096];
  if (getcwd (cwd, sizeof cwd))
    MIX (cwd, strlen (cwd));
  char *list = strdup (makefiles), *save = NULL;
  for (char *w = strtok_r (list, " \t", &save); w; w = strtok_r (NULL, " \t", &save))
    {
      struct stat st;
      MIX (w, strlen (w));
      if (stat (w, &st) == 0)
        {
          MIX (&st.st_mtim, sizeof st.st_mtim);
          MIX (&st.st_size, sizeof st.st_size);
          MIX (&st.st_ino, sizeof st.st_ino);
        }
    }
  free (list);
#undef MIX
  return h;
}

/* Write make's database (the sections `make -p` prints) once per key. */
static char *dump_database (const char *dir, const char *makefiles)
{
  static char path[4200];
  char tmp[4300];
  snprintf (path, sizeof path, "%s/%016llx.mkdb", dir, dump_key (makefiles));
  if (access (path, F_OK) == 0)
    return path;
  /* The recorder compresses dumps when the build ends (src/makedb/dump.rs): the same
     dump, kept under the same name. */
  snprintf (tmp, sizeof tmp, "%s.zst", path);
  if (access (tmp, F_OK) == 0)
    return path;
  snprintf (tmp, sizeof tmp, "%s.%d.tmp", path, (int) getpid ());
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return NULL;
  fflush (stdout);
  /* A dump that cannot be written (a full disk) must not become make's own "write
     error: stdout" at exit: its error is cleared, unless make's stdout had one. */
  int make_error = ferror (stdout);
  int saved = dup (STDOUT_FILENO);
  dup2 (fd, STDOUT_FILENO);
  close (fd);
  print_variable_data_base ();
  print_rule_data_base ();
  print_file_data_base ();
  fflush (stdout);
  int failed = ferror (stdout) && !make_error;
  if (failed)
    clearerr (stdout);
  dup2 (saved, STDOUT_FILENO);
  close (saved);
  if (failed)
    {
      unlink (tmp);
      return NULL;
    }
  return rename (tmp, path) == 0 ? path : NULL;
}

static void at_exit (void)
{
  if (sock < 0)
    return;
  char *goal = global_expand ("$(.DEFAULT_GOAL)");
  char *makefiles = global_expand ("$(MAKEFILE_LIST)");
  const char *dir = getenv (ENV_MAKEDB_DIR);
  const char *dump = dir && *dir ? dump_database (dir, makefiles) : NULL;
  struct msg m;
  encode_make_end (&m, getpid (), now_ns (), goal, makefiles, dump);
  send_msg (&m);
  gmk_free (goal);
  gmk_free (makefiles);
}

static void announce (void)
{
  struct msg m;
  char cwd[4096];
  size_t argv_len = 0;
  char *argv = read_all ("/proc/self/cmdline", &argv_len);
  encode_make_start (&m, getpid (), getppid (), makelevel, getcwd (cwd, sizeof cwd) ? cwd : "",
                     argv ? argv : "", argv ? argv_len : 0, getenv (ENV_CTX), now_ns ());
  free (argv);
  send_msg (&m);
  char ack[16];
  if (sock >= 0 && recv (sock, ack, sizeof ack, 0) <= 0)
    {
      close (sock);
      sock = -1;
    }
}

int makescope_gmk_setup (const gmk_floc *floc)
{
  /* A makefile may `load` us again under makescope: announce ourselves once. */
  static int done;
  if (done++)
    return 1;
  if (makescope_python_setup && !makescope_python_setup (floc))
    return 0;
  const char *path = getenv (ENV_SOCK);
  shim = getenv (ENV_SHIM);
  shell_dir = getenv (ENV_SHELL_DIR);
  if (!path || !*path || !shim || !*shim || !shell_dir || !*shell_dir)
    return 1;   /* loaded outside makescope: only $(python …) */
  if (strpbrk (shell_dir, " \t\n"))
    {
      fprintf (stderr, "makescope: the temporary directory must not contain spaces: %s\n", shell_dir);
      return 0;
    }
  silent = getenv (ENV_SILENT) && !strcmp (getenv (ENV_SILENT), "1");
  char *version = gmk_expand ("$(MAKE_VERSION)");
  make43 = !strcmp (version, "4.3");
  gmk_free (version);
  sock = connect_recorder (path);
  if (sock < 0)
    return 1;   /* the recorder is gone (e.g. make run by hand inside a recipe) */
  announce ();
  atexit (at_exit);
  /* Unwinding from here reaches make's load_file: it will reach construct_command_argv. */
  stack_tells = dlsym (RTLD_DEFAULT, "construct_command_argv") && on_stack ("load_file");
  gmk_add_function ("makescope-shell", shell_fn, 0, 1, GMK_FUNC_NOEXPAND);
  gmk_add_function ("makescope-ctx", ctx_fn, 0, 1, GMK_FUNC_NOEXPAND);
  gmk_eval ("export " ENV_CTX " = $(makescope-ctx x)\n"
            "%: override SHELL = $(makescope-shell x)\n", floc);
  return 1;
}

/* The setup `makescope make`'s own makefile (MAKEFILES, src/record/mod.rs) names:
 * `load …/makescope.so(makescope_build_setup)`. It returns -1, make's "special load",
 * so that make neither lists the plugin in .LOADED nor tries to remake it as a makefile,
 * as it would for a load the makefile made itself. */
int makescope_build_setup (const gmk_floc *floc)
{
  return makescope_gmk_setup (floc) ? -1 : 0;
}
