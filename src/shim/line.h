/* What the shim reads from how it was run, before it runs anything: the real shell
 * behind the link make ran it through, and whether a recipe line runs a sub-make.
 * Pure functions of their arguments (a test in src/protocol.rs, `c_side`, runs them).
 */
#ifndef MAKESCOPE_SHIM_LINE_H
#define MAKESCOPE_SHIM_LINE_H

#include <stddef.h>
#include <string.h>

/* The real shell behind a link to the shim, given the link directory and the path the
   shim was run as: `<dir>/abs/bin/bash` is /bin/bash, `<dir>/rel/bash` is bash (found
   on PATH); NULL if `path` is not such a link. */
static inline const char *real_shell (const char *dir, const char *path)
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

/* Whether COMMAND runs MAKE (the value of $(MAKE), `make_len` bytes) as a command word. */
static inline int is_boundary (int c) { return c == 0 || strchr (" \t\n;&|()`'\"=", c) != NULL; }
static inline int runs_make (const char *command, const char *make, size_t make_len)
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

#endif
