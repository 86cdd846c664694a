/* The fast path's ring, for the C sides: the shim (which makes it, and records the
 * misses of its own PATH search in it) and the preload helper (which appends a record
 * per call it serves). Mirrored in src/trace/ring.rs: change both or neither.
 *
 * One header page, then fixed slots; record n is in slot n % nslots. A producer reserves
 * a record number with compare-and-swap on `head` (unless the ring is full), fills the
 * slot and sets `ready` last, with release; the recorder reads, clears `ready` and
 * advances `tail`.
 */
#ifndef MAKESCOPE_RING_H
#define MAKESCOPE_RING_H

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_SLOTS 16384
#define RING_SLOT_SIZE 256
#define RING_PATH_ROOM (RING_SLOT_SIZE - 24)
#define RING_MAGIC 0x31474e4952534d4bULL /* "KMSRING1" */

struct ring_header {
    uint64_t head;   /* next record number to reserve (compare-and-swap) */
    uint64_t nslots; /* slots after the header page */
    uint64_t tail;   /* next record number the recorder will read (it advances it) */
    uint64_t magic;  /* RING_MAGIC */
};

struct ring_slot {
    uint32_t ready; /* 1 once the slot is complete (release) */
    uint16_t kind;  /* AccessKind */
    uint16_t len;   /* path bytes */
    int32_t pid;
    int32_t ppid;
    int64_t time_ns;
    char path[RING_PATH_ROOM];
};

enum { RING_READ = 1, RING_STAT = 7, RING_PROBE = 8 };

/* Reserve the next record, or NULL when the ring is full (then the call must go the
 * trapped way: a full ring costs speed, never records). */
static inline struct ring_slot *ring_reserve(struct ring_header *ring) {
    struct ring_slot *slots = (struct ring_slot *)((char *)ring + 4096);
    uint64_t h = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
    do {
        uint64_t t = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
        if (h - t >= ring->nslots) return NULL;
    } while (!__atomic_compare_exchange_n(&ring->head, &h, h + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    return &slots[h % ring->nslots];
}

/* Stamp and publish a filled record. */
static inline void ring_commit(struct ring_slot *s, int kind) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    s->kind = (uint16_t)kind;
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
}

#endif
