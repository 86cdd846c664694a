/* $(python EXPR) and $(python-exec CODE) for GNU make 4.3 (part of makescope.so).
 *
 * libpython is dlopen'ed (RTLD_GLOBAL) on the first call, never when make loads the
 * plugin: every make process of a recorded build loads it, few call Python. All of
 * Python's C API is reached through dlsym, so the plugin has no link-time dependency on
 * libpython. The work (decoding, turning values into words, formatting errors) is done
 * in Python by RUNNER below; C only moves bytes and stops make on an error, at the
 * makefile line of the expansion, through make's own fatal().
 */
#define _GNU_SOURCE
#include <gnumake.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MAKESCOPE_LIBPYTHON
#define MAKESCOPE_LIBPYTHON "libpython3.so"
#endif

struct floc43 { const char *filenm; unsigned long lineno; unsigned long offset; };
extern const struct floc43 **expanding_var;
extern void fatal (const struct floc43 *flocp, size_t length, const char *fmt, ...)
  __attribute__ ((noreturn));

typedef void PyObject;
enum { FILE_INPUT = 257 };    /* Py_file_input */

static PyObject *(*AddModule) (const char *);
static PyObject *(*GetDict) (PyObject *);
static PyObject *(*RunString) (const char *, int, PyObject *, PyObject *, void *);
static PyObject *(*GetItemString) (PyObject *, const char *);
static PyObject *(*CallFunction) (PyObject *, const char *, ...);
static int (*AsStringAndSize) (PyObject *, char **, long *);
static void (*DecRef) (PyObject *);
static void (*ErrPrint) (void);
static PyObject *runner;

/* run(kind, code) -> b"0" + text, or b"1" + message after printing any traceback. */
static const char RUNNER[] =
  "def run(kind, code, state=__import__('__main__').__dict__):\n"
  "    import os, sys, textwrap, traceback\n"
  "    src = os.fsdecode(code)\n"
  "    try:\n"
  "        if kind == 0:\n"
  "            v = eval(compile(src.strip(), '$(python)', 'eval'), state)\n"
  "        else:\n"
  "            exec(compile(textwrap.dedent(src), '$(python-exec)', 'exec'), state)\n"
  "            v = None\n"
  "        if v is None:\n"
  "            v = ''\n"
  "        elif isinstance(v, (set, frozenset)):\n"
  "            v = ' '.join(sorted(str(x) for x in v))\n"
  "        elif not isinstance(v, (str, bytes, bytearray)) and hasattr(v, '__iter__'):\n"
  "            v = ' '.join(str(x) for x in v)\n"
  "        return b'0' + (v if isinstance(v, (bytes, bytearray)) else os.fsencode(str(v)))\n"
  "    except BaseException as e:\n"
  "        tb = traceback.extract_tb(e.__traceback__)\n"
  "        if len(tb) > 2:   # raised in code the makefile called: show where\n"
  "            traceback.print_exception(type(e), e, e.__traceback__.tb_next, file=sys.stderr)\n"
  "        msg = traceback.format_exception_only(type(e), e)[-1].strip()\n"
  "        name = '$(python)' if kind == 0 else '$(python-exec)'\n"
  "        return b'1' + os.fsencode(f'{name}: {msg}')\n";

#define SYM(var, name) ((*(void **) &var = dlsym (lib, name)) != NULL)

/* Load and start Python once; 0 with *why set if it cannot be done. */
static int start_python (const char **why)
{
  static int tried;
  if (runner || tried)
    return runner != NULL;
  tried = 1;
  void *lib = dlopen (MAKESCOPE_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL);
  int (*IsInitialized) (void);
  void (*InitializeEx) (int);
  void (*SetPythonHome) (const wchar_t *);
  if (!lib || !SYM (IsInitialized, "Py_IsInitialized") || !SYM (InitializeEx, "Py_InitializeEx")
      || !SYM (AddModule, "PyImport_AddModule") || !SYM (GetDict, "PyModule_GetDict")
      || !SYM (RunString, "PyRun_StringFlags") || !SYM (GetItemString, "PyDict_GetItemString")
      || !SYM (CallFunction, "PyObject_CallFunction") || !SYM (DecRef, "Py_DecRef")
      || !SYM (AsStringAndSize, "PyBytes_AsStringAndSize") || !SYM (ErrPrint, "PyErr_Print"))
    {
      *why = lib ? "not a usable libpython: " MAKESCOPE_LIBPYTHON : dlerror ();
      return 0;
    }
  /* A libpython in PREFIX/lib has its standard library under PREFIX: say so, or Python
     would look for it next to make (/usr/bin/make finds /usr/lib/python3.X). */
  static wchar_t home[4096];
  const char *slash = strrchr (MAKESCOPE_LIBPYTHON, '/');
  size_t dir = slash ? (size_t) (slash - MAKESCOPE_LIBPYTHON) : 0;
  if (!IsInitialized () && !getenv ("PYTHONHOME") && dir > 4 && dir < 4000
      && !strncmp (MAKESCOPE_LIBPYTHON + dir - 4, "/lib", 4) && SYM (SetPythonHome, "Py_SetPythonHome")
      && mbstowcs (home, MAKESCOPE_LIBPYTHON, dir - 4) == dir - 4)
    SetPythonHome (home);
  if (!IsInitialized ())
    InitializeEx (0);
  PyObject *ns = GetDict (AddModule ("__makescope__"));
  PyObject *done = ns ? RunString (RUNNER, FILE_INPUT, ns, ns, NULL) : NULL;
  if (!done)
    {
      ErrPrint ();
      *why = "starting Python failed";
      return 0;
    }
  DecRef (done);
  runner = GetItemString (ns, "run");
  return runner != NULL;
}

static void stop_make (const char *msg, size_t len)
{
  fatal (expanding_var ? *expanding_var : NULL, len, "%.*s", (int) len, msg);
}

static char *call (int kind, const char *code)
{
  const char *why = NULL;
  if (!start_python (&why))
    {
      char msg[512];
      stop_make (msg, snprintf (msg, sizeof msg, "$(python): %s", why));
    }
  PyObject *result = CallFunction (runner, "iy", kind, code);
  char *data;
  long len;
  if (!result || AsStringAndSize (result, &data, &len) < 0 || len < 1)
    {
      ErrPrint ();
      stop_make ("$(python): internal error", 25);
    }
  if (data[0] == '1')
    stop_make (data + 1, len - 1);
  char *text = gmk_alloc (len);
  memcpy (text, data + 1, len - 1);
  text[len - 1] = '\0';
  DecRef (result);
  return text;
}

static char *python_fn (const char *name, unsigned int argc, char **argv)
{
  return call (0, argv[0]);
}

static char *python_exec_fn (const char *name, unsigned int argc, char **argv)
{
  return call (1, argv[0]);
}

int makescope_python_setup (const gmk_floc *floc)
{
  /* A makefile may `load` the plugin under another name while makescope has loaded it:
     make then calls setup again. Registering twice is harmless, but say so. */
  gmk_add_function ("python", python_fn, 1, 1, 0);
  gmk_add_function ("python-exec", python_exec_fn, 1, 1, 0);
  return 1;
}
