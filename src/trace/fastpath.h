/* The fast path as the shim sets it up for a traced recipe line (the helper itself is
 * preload.c, the ring's layout ring.h): make the line's ring, take make's own ring and
 * helper out of the line's environment, put the line's in, and record the misses of
 * the shim's own PATH search in the ring the way the helper would have.
 *
 * Everything here runs in the shim's child before it execs the command, some of it
 * before the seccomp filter is in place: nothing here may wait for the recorder. The
 * recorder takes what enable_fast_path adds back out of the environments it records
 * (`without_fast_path` in src/record/server/jobs.rs); a test checks the two agree.
 */
#ifndef MAKESCOPE_FASTPATH_H
#define MAKESCOPE_FASTPATH_H

/* Needs _GNU_SOURCE (memfd_create, asprintf), defined before any system header. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../protocol.h"
#include "ring.h"

/* The helper's trusted page, as ENV_TRACE_PAGE spells it: FAST_PATH_PAGE in ring.rs. */
#define FAST_PATH_PAGE_HEX "10000000000"

/* The line's ring (layout in src/trace/ring.rs, made as Ring::new makes it): a memfd
   sealed against shrinking, inherited by the command (no close-on-exec). -1 when it
   cannot be made: then every call is trapped, which costs time, not records. */
static inline int make_ring (void)
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
   own (ENV_TRACE_UNFILTERED set: no filter under make), so that make's own file
   activity is recorded. A recipe line that is traced, or whose tracing is refused, must
   not inherit that: take make's ring and the helper back out (the descriptor only if it
   is still that ring) and the sanitizer setting that came with them. A sub-make's line
   keeps them, for the sub-make. */
static inline void leave_make_ring (const char *helper)
{
  if (!getenv (ENV_TRACE_UNFILTERED))
    return;
  const char *number = getenv (ENV_TRACE_RING);
  int fd = number ? atoi (number) : -1;
  uint64_t header[4];
  int seals = fd > 2 ? fcntl (fd, F_GET_SEALS) : -1;
  if (seals >= 0 && (seals & F_SEAL_SHRINK) && pread (fd, header, sizeof header, 0) == (ssize_t) sizeof header
      && header[3] == RING_MAGIC)
    close (fd);
  unsetenv (ENV_TRACE_UNFILTERED);
  unsetenv (ENV_TRACE_RING);
  unsetenv (ENV_TRACE_PAGE);
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
  static const char link_order[] = ASAN_LINK_ORDER;
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
static inline void enable_fast_path (const char *helper, int ring)
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
  if (asprintf (&asan_value, "%s%s" ASAN_LINK_ORDER, asan && *asan ? asan : "",
                asan && *asan ? ":" : "") >= 0)
    {
      setenv ("ASAN_OPTIONS", asan_value, 1);
      free (asan_value);
    }
  setenv (ENV_TRACE_RING, number, 1);
  setenv (ENV_TRACE_PAGE, FAST_PATH_PAGE_HEX, 1);
  setenv ("LD_PRELOAD", value, 1);
  free (value);
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
static inline const char *skip_missing (const char *file, const char *path, struct misses *m)
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
static inline int record_misses (int ring_fd, const struct misses *m)
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

#endif
