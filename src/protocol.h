/* The recorder's wire format for the C sides (the make plugin and the shim): the C
 * mirror of src/protocol.rs. A message is one kind byte, then fields; a field is a
 * little-endian u32 length and that many bytes; numbers travel as decimal text.
 * Change this, src/protocol.rs and their users together.
 */
#ifndef MAKESCOPE_PROTOCOL_H
#define MAKESCOPE_PROTOCOL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
  MAKE_START = 1, MAKE_END = 2,
  COMMAND_START = 10, OUTPUT = 11, COMMAND_END = 12, LISTENER = 13, TRACE_REFUSED = 14, SUB_MAKE = 15,
  ACK = 20
};

struct msg { char *data; size_t len, cap; };

static inline void msg_start (struct msg *m, int kind)
{
  m->cap = 4096;
  m->len = 0;
  m->data = malloc (m->cap);
  if (!m->data)
    abort ();
  m->data[m->len++] = (char) kind;
}
static inline void put (struct msg *m, const void *data, size_t len)
{
  uint32_t n = (uint32_t) len;
  if (m->len + 4 + len > m->cap)
    {
      m->cap = (m->len + 4 + len) * 2;
      m->data = realloc (m->data, m->cap);
      if (!m->data)
        abort ();
    }
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

static inline long long now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
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

#endif
