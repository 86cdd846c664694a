/* The fast path's ring, for the C sides: the shim (which makes it, and records the
 * misses of its own PATH search in it) and the preload helper (which appends a record
 * per call it serves). Mirrored in src/trace/ring.rs: change both or neither.
 *
 * One header page, then `nunits` units of 64 bytes used round and round. A record takes
 * as many whole units as its 24-byte header and its path need (a compile's paths take
 * one or two: a quarter of the memory that fixed 256-byte slots took, so fewer pages to
 * fault in and less memory traffic on both sides) and never straddles the end of the
 * area: a producer whose record would, reserves the units up to the end as padding too.
 *
 * A producer reserves units with compare-and-swap on `head` (unless there is no room:
 * then its call goes the trapped way; a full ring costs speed, never records), writes
 * `len` first (so that the recorder can step over a record whose writer died), then the
 * rest, and sets `ready` last, with release. The recorder reads a record at `tail`, zeroes
 * the first word of each of its units (no stale `ready` may be found at a unit where a
 * later record starts) and advances `tail`.
 */
#ifndef MAKESCOPE_RING_H
#define MAKESCOPE_RING_H

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_UNIT 64
#define RING_UNITS 65536                    /* 4 MiB, touched only as records arrive */
#define RING_RECORD_HEADER 24
#define RING_PATH_MAX (1024 - RING_RECORD_HEADER) /* longer paths are trapped */
#define RING_MAGIC 0x32474e4952534d4bULL     /* "KMSRING2" */
#define RING_PAD 0xffff                      /* kind of padding; len = its units */

struct ring_header {
    uint64_t head;   /* next unit to reserve (compare-and-swap), counting from 0 forever */
    uint64_t nunits; /* units after the header page */
    uint64_t tail;   /* next unit the recorder will read (it advances it) */
    uint64_t magic;  /* RING_MAGIC */
    uint64_t lost;   /* calls not recorded where nothing traps them (make's ring) */
    uint64_t closed; /* 1 once the recorder has read the ring for the last time */
    uint64_t stalled; /* make's ring: tail + 1 when a waiter saw it stand still for 2 s */
    uint64_t cwd_epoch; /* bumped by the recorder before it lets a chdir/fchdir run */
};

struct ring_record {
    uint32_t ready; /* 1 once the record is complete (release) */
    uint16_t kind;  /* AccessKind, or RING_PAD */
    uint16_t len;   /* path bytes (written first) */
    int32_t pid;
    int32_t ppid;
    int64_t time_ns;
    char path[];    /* len bytes, not NUL-terminated */
};

/* AccessKind ids (access_kind in the record's schema). */
enum {
    RING_READ = 1, RING_WRITE = 2, RING_CREATE = 3, RING_TRUNCATE = 4, RING_APPEND = 5,
    RING_STAT = 7, RING_PROBE = 8,
};
/* Not an access: the process is about to call exit_group; the 4 path bytes are the
 * status (int). */
#define RING_EXIT 0x100

/* Reserve a record for a path of `len` bytes (at most RING_PATH_MAX), or NULL when the
 * ring has no room. */
static inline struct ring_record *ring_reserve(struct ring_header *ring, size_t len) {
    char *area = (char *)ring + 4096;
    uint64_t n = ring->nunits;
    uint64_t k = (RING_RECORD_HEADER + len + RING_UNIT - 1) / RING_UNIT;
    uint64_t h = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE), pad;
    do {
        uint64_t t = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
        uint64_t at = h % n;
        pad = at + k > n ? n - at : 0;
        if (k > n || h + pad + k - t > n) return NULL;
    } while (!__atomic_compare_exchange_n(&ring->head, &h, h + pad + k, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    if (pad) {
        struct ring_record *p = (struct ring_record *)(area + (h % n) * RING_UNIT);
        p->len = (uint16_t)pad;
        p->kind = RING_PAD;
        __atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
    }
    struct ring_record *r = (struct ring_record *)(area + ((h + pad) % n) * RING_UNIT);
    r->len = (uint16_t)len;
    return r;
}

/* Stamp and publish a filled record. */
static inline void ring_commit(struct ring_record *r, int kind) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    r->kind = (uint16_t)kind;
    __atomic_store_n(&r->ready, 1, __ATOMIC_RELEASE);
}

#endif
