/* makescope's in-process fast path: an LD_PRELOAD helper in traced commands.
 *
 * The seccomp filter traps file system calls and costs a supervisor round trip each.
 * This helper serves the common ones itself: open/openat (but O_PATH, O_TMPFILE), the
 * stat family, access/faccessat, and execve of a path that does not exist;
 * also glibc's own opens (locale files, message catalogs, fopen), by redirecting the
 * two internal functions they go through (see redirect_libc_opens), realpath's internal
 * faccessat, and the process's exit (glibc's _exit: an exit record, then exit_group; see
 * helper_exit).
 * It makes the real system call from one page of code at a fixed address, which the
 * filter trusts (FilterOptions::trusted_page),
 * and writes what happened (path, kind derived from the actual result) into a ring in
 * shared memory that the supervisor drains. Everything else (exec, unlink, rename,
 * raw syscalls, static programs, the dynamic loader's own opens, anything this helper
 * cannot record: a full ring, a long path) takes the ordinary, trapped route. The helper
 * can lose speed, never records. In make itself there is no filter
 * (MAKESCOPE_TRACE_UNFILTERED): there a full ring is waited for, and what still cannot
 * be recorded is counted in the ring's header for the recorder to report.
 *
 * Environment (set by the shim): MAKESCOPE_TRACE_PAGE (hex address), MAKESCOPE_TRACE_RING
 * (fd of the ring memfd). Without both, or when that fd is not a sealed memfd carrying
 * the ring's magic (a process may have closed it and reused the number), the helper
 * does nothing.
 *
 * A record is reserved before the call is made (so that a call made through the trusted
 * page is always recorded); a call that blocks (a FIFO) holds the supervisor's reading
 * at its record meanwhile, and others fall back to trapping once the ring is full. The ring's layout
 * is in ring.h, mirrored in src/trace/ring.rs: change both or neither.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../protocol.h"
#include "pathsearch.h"
#include "ring.h"


typedef long (*raw_fn)(long nr, long a, long b, long c, long d, long e);
static raw_fn raw;                  /* the syscall stub on the trusted page */
static struct ring_header *ring;    /* NULL: helper off */
static int my_pid, my_ppid;
/* No seccomp filter under this process (make's own ring, MAKESCOPE_TRACE_UNFILTERED): a
   call the helper does not record is not trapped either, so it waits for room in a full
   ring and counts what it still cannot record (ring->lost) for the recorder to report. */
static int unfiltered;

static const unsigned char stub[] = {
    0x48, 0x89, 0xf8, /* mov %rdi,%rax */
    0x48, 0x89, 0xf7, /* mov %rsi,%rdi */
    0x48, 0x89, 0xd6, /* mov %rdx,%rsi */
    0x48, 0x89, 0xca, /* mov %rcx,%rdx */
    0x4d, 0x89, 0xc2, /* mov %r8,%r10 */
    0x4d, 0x89, 0xc8, /* mov %r9,%r8 */
    0x0f, 0x05,       /* syscall */
    0xc3,             /* ret */
};

static void redirect_libc_opens(void);
static void setup(void);
static int set_up; /* setup has run (or is running) */

/* The ring, setting the helper up first if no constructor has yet (see setup); NULL:
 * the helper is off. */
static inline struct ring_header *active(void) {
    struct ring_header *r = __atomic_load_n(&ring, __ATOMIC_ACQUIRE);
    if (!r && !__atomic_load_n(&set_up, __ATOMIC_ACQUIRE)) {
        setup();
        r = __atomic_load_n(&ring, __ATOMIC_ACQUIRE);
    }
    return r;
}

static void after_fork(void) {
    my_pid = (int)syscall(SYS_getpid);
    my_ppid = (int)syscall(SYS_getppid);
}

/* Set up once: from the constructor, or earlier, from the first call the helper serves.
 * Libraries' constructors run before a preloaded library's (dependencies first, and the
 * helper is nobody's): libselinux's, in mv, sed, cp …, looks for /etc/selinux/config
 * before ours would have run, which trapped once a process (~10,000 times on a glibc
 * build). */
__attribute__((constructor)) static void setup(void) {
    if (__atomic_exchange_n(&set_up, 1, __ATOMIC_ACQ_REL)) return;
    const char *page_env = getenv(ENV_TRACE_PAGE);
    const char *ring_env = getenv(ENV_TRACE_RING);
    if (!page_env || !ring_env) return;
    int fd = atoi(ring_env);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8192) return;
    int seals = fcntl(fd, F_GET_SEALS);
    struct ring_header h;
    if (seals < 0 || !(seals & F_SEAL_SHRINK) || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
        h.magic != RING_MAGIC || h.nunits == 0 || 4096 + h.nunits * RING_UNIT > (uint64_t)st.st_size)
        return;
    void *want = (void *)strtoul(page_env, NULL, 16);
    void *page = mmap(want, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page != want) {
        /* Inherited across fork, or taken: only reuse it if it already holds the stub. */
        if (page != MAP_FAILED) munmap(page, 4096);
        return;
    }
    memcpy(page, stub, sizeof stub);
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) return;
    void *map = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return;
    raw = (raw_fn)page;
    unfiltered = getenv(ENV_TRACE_UNFILTERED) != NULL;
    after_fork();
    pthread_atfork(NULL, NULL, after_fork);
    __atomic_store_n(&ring, (struct ring_header *)map, __ATOMIC_RELEASE);
    if (!getenv(ENV_TRACE_NO_REDIRECT)) redirect_libc_opens();
}

/* A call that goes the ordinary way: trapped under a filter; without one, not recorded. */
static struct ring_record *missed(void) {
    if (unfiltered) __atomic_add_fetch(&ring->lost, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Room for a record: without a filter to fall back on, wait for the recorder to drain
 * (it does every 50 ms) for up to ~10 s, unless it has closed the ring (the build is
 * over: nothing to record, nothing to wait for) or has stopped draining it: no progress
 * for 2 s means the recorder is gone (killed) or stuck, and this waiter says so in the
 * header (`stalled`: the tail it saw, plus one), so that the next call that finds the
 * ring full and the tail still there does not wait at all. (Otherwise a daemon started
 * from `$(shell …)` that outlives a killed makescope would wait ~10 s a call.) */
static struct ring_record *room(size_t len) {
    if (unfiltered && __atomic_load_n(&ring->closed, __ATOMIC_ACQUIRE)) return NULL;
    struct ring_record *s = ring_reserve(ring, len);
    if (s || !unfiltered) return s ? s : missed();
    uint64_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&ring->stalled, __ATOMIC_ACQUIRE) == tail + 1) return missed();
    for (int i = 0, still = 0; !s && i < 10000 && !__atomic_load_n(&ring->closed, __ATOMIC_ACQUIRE); i++) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
        s = ring_reserve(ring, len);
        uint64_t now = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
        if (now != tail) {
            tail = now;
            still = 0;
        } else if (!s && ++still >= 2000) {
            __atomic_store_n(&ring->stalled, tail + 1, __ATOMIC_RELEASE);
            break;
        }
    }
    return s ? s : missed();
}

/* Set by glibc (2.32+) to 0 once the process has created a thread; weak, so that the
 * helper still loads where it is missing (then nothing is cached). */
extern char __libc_single_threaded __attribute__((weak));

/* The working directory, cached: a compile makes thousands of relative-path calls (glibc's
 * -I../include …: ~5,800 of 7,500 in one), and getcwd is ~0.3 µs each. The cache is
 * trusted only where nothing can change the directory behind its back:
 * - under a filter (not `unfiltered`), where every chdir/fchdir, libc's, glibc-internal
 *   (nftw, fts) or raw, is trapped, and the supervisor bumps the ring's `cwd_epoch`
 *   before letting it run: the cache is used only while the epoch is the one read before
 *   the getcwd that filled it;
 * - while the process has one thread (a sibling thread could see the epoch bumped before
 *   the other's chdir has happened, and cache the old directory under the new epoch);
 * - filled only by the process whose pid the helper knows (raw getpid, once per fill): a
 *   vfork child shares this memory, and its directory, after its own chdir, is not its
 *   parent's.
 * A fork child inherits it with the directory it describes. Processes that share one
 * fs_struct without being threads (clone(CLONE_FS) alone; no common program does that)
 * are not covered, as the supervisor's own cwd cache is not (docs/tracer.md). */
static char cwd_cache[RING_PATH_MAX + 1];
static size_t cwd_cache_len; /* 0: nothing cached */
static uint64_t cwd_cache_epoch;

/* The working directory's length (0: unknown, go the slow way); its bytes at *dir,
 * either the cache or `buf`. */
static size_t cwd_of(char *buf, const char **dir) {
    int cacheable = !unfiltered && &__libc_single_threaded && __libc_single_threaded;
    uint64_t epoch = __atomic_load_n(&ring->cwd_epoch, __ATOMIC_ACQUIRE);
    if (cacheable && cwd_cache_len && cwd_cache_epoch == epoch) {
        *dir = cwd_cache;
        return cwd_cache_len;
    }
    long n = raw(SYS_getcwd, (long)buf, RING_PATH_MAX + 1, 0, 0, 0);
    if (n <= 0) return 0;
    size_t len = strlen(buf);
    if (cacheable && raw(SYS_getpid, 0, 0, 0, 0, 0) == my_pid) {
        memcpy(cwd_cache, buf, len);
        cwd_cache_len = len;
        cwd_cache_epoch = epoch;
    }
    *dir = buf;
    return len;
}

/* Reserve a record and fill in the path: absolute as given, relative joined onto the
 * directory (cwd or dirfd) read through the stub. NULL: not recordable, go the slow way. */
static struct ring_record *reserve(int dirfd, const char *path) {
    size_t plen = strlen(path);
    if (plen == 0) return NULL; /* names no file: fails with ENOENT */
    if (plen > RING_PATH_MAX) return missed();
    char base[RING_PATH_MAX + 1];
    const char *dir = base;
    size_t blen = 0;
    if (path[0] != '/') {
        long n;
        if (dirfd == AT_FDCWD) {
            blen = cwd_of(base, &dir);
            if (blen == 0) return missed();
        } else {
            char link[32];
            int k = 0, d = dirfd;
            char digits[12];
            int nd = 0;
            memcpy(link, "/proc/self/fd/", 14);
            k = 14;
            if (d < 0) return missed();
            do { digits[nd++] = '0' + d % 10; d /= 10; } while (d);
            while (nd) link[k++] = digits[--nd];
            link[k] = 0;
            n = raw(SYS_readlink, (long)link, (long)base, sizeof base, 0, 0);
            if (n <= 0 || n >= (long)sizeof base || base[0] != '/') return missed();
            blen = (size_t)n;
        }
        if (blen + 1 + plen > RING_PATH_MAX) return missed();
    }
    struct ring_record *s = room(blen ? blen + 1 + plen : plen);
    if (!s) return NULL;
    size_t len = 0;
    if (blen) {
        memcpy(s->path, dir, blen);
        s->path[blen] = '/';
        len = blen + 1;
    }
    memcpy(s->path + len, path, plen);
    s->pid = my_pid;
    s->ppid = my_ppid;
    return s;
}

/* A raw call's result as libc returns it. */
static long result(long rc) {
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

static long finish(struct ring_record *s, long rc, int found_kind) {
    ring_commit(s, rc >= 0 ? found_kind : (rc == -ENOENT || rc == -ENOTDIR) ? RING_PROBE : found_kind);
    return result(rc);
}

/* O_PATH and O_TMPFILE opens (rare) open no file's contents: recorded as a stat or a
 * probe of the path. __O_TMPFILE includes O_DIRECTORY's bit: an opendir is neither. */
static int special_open(int flags) {
    return (flags & O_PATH) || (flags & __O_TMPFILE) == __O_TMPFILE;
}

static int read_only(int flags) {
    return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_TRUNC)) && !special_open(flags);
}

/* Does the path exist, in the supervisor's sense (sys.rs, exists): F_OK succeeds, or
 * fails with EACCES (a component we may not search: the file may well be there). */
static int path_exists(int dirfd, const char *path, int follow) {
    long rc = raw(SYS_faccessat2, dirfd, (long)path, F_OK, follow ? 0 : AT_SYMLINK_NOFOLLOW, 0);
    return rc == 0 || rc == -EACCES;
}

/* An open that may write or create, classified exactly as the supervisor classifies a
 * trapped one (supervisor/classify.rs, `open`; docs/tracer.md's table), so that the record
 * does not depend on which way the call went: with O_CREAT, whether the path existed is
 * looked at before the call (create vs truncate/append/write, or stat for O_EXCL);
 * without, after it (success proves it; a failure other than ENOENT/ENOTDIR asks). */
static long fast_write_openat(struct ring_record *s, int dirfd, const char *path, int flags, mode_t mode) {
    int follow = !(flags & O_NOFOLLOW), creat = (flags & O_CREAT) != 0;
    int exists = creat ? path_exists(dirfd, path, follow) : 0;
    long rc = raw(SYS_openat, dirfd, (long)path, flags, mode, 0);
    if (!creat)
        exists = rc >= 0 || (rc != -ENOENT && rc != -ENOTDIR && path_exists(dirfd, path, follow));
    int kind;
    if (!exists)
        kind = creat ? RING_CREATE : RING_PROBE;
    else if (creat && (flags & O_EXCL))
        kind = RING_STAT; /* fails with EEXIST */
    else if ((flags & O_ACCMODE) == O_RDONLY && !(flags & O_TRUNC))
        kind = RING_READ;
    else if (flags & O_TRUNC)
        kind = RING_TRUNCATE;
    else if (flags & O_APPEND)
        kind = RING_APPEND;
    else
        kind = RING_WRITE;
    ring_commit(s, kind);
    return result(rc);
}

static long fast_openat(int dirfd, const char *path, int flags, mode_t mode) {
    struct ring_record *s;
    if (!active())
        return syscall(SYS_openat, dirfd, path, flags, mode);
    if (!(s = reserve(dirfd, path)))
        return syscall(SYS_openat, dirfd, path, flags, mode);
    if (special_open(flags)) {
        /* As the supervisor classifies it (supervisor/classify.rs, open): a stat of the
           path (make -O's tmpfile names its directory) when it exists, else a probe. */
        long rc = raw(SYS_openat, dirfd, (long)path, flags, mode, 0);
        ring_commit(s, path_exists(dirfd, path, !(flags & O_NOFOLLOW)) ? RING_STAT : RING_PROBE);
        return result(rc);
    }
    if (!read_only(flags)) return fast_write_openat(s, dirfd, path, flags, mode);
    long rc = raw(SYS_openat, dirfd, (long)path, flags, mode, 0);
    return finish(s, rc, RING_READ);
}

static long fast_path_call(long nr, int dirfd, const char *path, long a, long b, long c) {
    struct ring_record *s;
    if (!active() || !(s = reserve(dirfd, path)))
        return syscall(nr, (long)dirfd, (long)path, a, b, c);
    long rc = raw(nr, dirfd, (long)path, a, b, c);
    return finish(s, rc, RING_STAT);
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

/* Local, so that glibc's redirected opens (below) reach this code even when an earlier
 * preload interposes `open`. */
static int helper_open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return (int)fast_openat(AT_FDCWD, path, flags, mode);
}
int open(const char *path, int flags, ...) __attribute__((alias("helper_open")));
int open64(const char *path, int flags, ...) __attribute__((alias("helper_open")));
int __open_2(const char *path, int flags) { return (int)fast_openat(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

/* Local too: glibc's realpath checks a name ending in '/' with its internal faccessat
 * (cc1, as and ld resolve their include and library directories that way: ~19,500
 * trapped calls on a glibc build); redirected below. */
static int helper_faccessat(int dirfd, const char *path, int mode, int flags) {
    return (int)fast_path_call(SYS_faccessat2, dirfd, path, mode, flags, 0);
}

/* glibc opens files for itself through two internal functions that no LD_PRELOAD
 * library interposes: __open_nocancel (setlocale's locale files, gettext's catalogs,
 * iconv's module cache, opendir, fopen with "c") and __open (fopen, mkstemp …). Every
 * process with LANG=C.UTF-8 (Debian's usual) opens or probes ~11 files that way before
 * main's first line of work (on a glibc build, with the write opens below, they were 850,000
 * of 1.43 million trapped calls: BENCHMARKS.md, "Fourth session"). So, as the
 * helper starts, it writes a jump to its own open over the first instructions of
 * both (found with dlsym: glibc exports them, the first as GLIBC_PRIVATE), the way
 * pmem's syscall_intercept patches libc; internal callers reach them through hidden
 * aliases at the same addresses. This runs from the constructor of an LD_PRELOAD
 * library, before main, when the process has one thread. Nothing is patched unless
 * both are found and their pages can be made writable (a libc without them, a
 * W^X policy): their calls are then trapped, as before. The pages become private
 * copies (copy on write), up to four per process. MAKESCOPE_TRACE_NO_REDIRECT=1 turns
 * this off (for measurements). */

/* A jump from `from` to `to` into `code`: rel32 when within ±2 GiB, else absolute.
 * Returns its length. */
static size_t jump_code(unsigned char code[14], const unsigned char *from, const void *to) {
    int64_t rel = (int64_t)((uintptr_t)to - ((uintptr_t)from + 5));
    if (rel == (int32_t)rel) {
        int32_t rel32 = (int32_t)rel;
        code[0] = 0xe9; /* jmp rel32 */
        memcpy(code + 1, &rel32, 4);
        return 5;
    }
    uint64_t abs = (uint64_t)(uintptr_t)to;
    code[0] = 0xff; /* jmp *0(%rip) */
    code[1] = 0x25;
    memset(code + 2, 0, 4);
    memcpy(code + 6, &abs, 8);
    return 14;
}

/* Make the pages of [lo, hi) writable, or executable again. Through the stub, not
 * libc's mprotect: its code may share these pages. They stay executable throughout. */
static int text_writable(uintptr_t lo, uintptr_t hi, int writable) {
    lo &= ~(uintptr_t)4095;
    hi = (hi + 4095) & ~(uintptr_t)4095;
    int prot = PROT_READ | PROT_EXEC | (writable ? PROT_WRITE : 0);
    return raw(SYS_mprotect, (long)lo, (long)(hi - lo), prot, 0, 0) == 0 ? 0 : -1;
}

struct patch {
    unsigned char *at;
    void *to;
};

/* Write the jumps. All of glibc's functions lie in its text, a few dozen pages apart
 * (~170 KiB on Debian 12's): one mprotect each way covers them all. A pair for each
 * cost ~16 µs more a process (every pair splits libc's mapping and merges it again).
 * Sites far apart (another library's), or a span that cannot be made writable as one
 * (a gap between mappings), are patched one at a time, in order, up to the first that
 * cannot be. */
static void write_jumps(const struct patch *patches, int n) {
    unsigned char code[14];
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < n; i++) {
        if ((uintptr_t)patches[i].at < lo) lo = (uintptr_t)patches[i].at;
        if ((uintptr_t)patches[i].at + sizeof code > hi) hi = (uintptr_t)patches[i].at + sizeof code;
    }
    if (hi - lo <= ((uintptr_t)16 << 20) && text_writable(lo, hi, 1) == 0) {
        for (int i = 0; i < n; i++) memcpy(patches[i].at, code, jump_code(code, patches[i].at, patches[i].to));
        text_writable(lo, hi, 0);
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t len = jump_code(code, patches[i].at, patches[i].to);
        if (text_writable((uintptr_t)patches[i].at, (uintptr_t)patches[i].at + len, 1) != 0) return;
        memcpy(patches[i].at, code, len);
        text_writable((uintptr_t)patches[i].at, (uintptr_t)patches[i].at + len, 0);
    }
}

/* Commit a record stamped with the pids asked of the kernel, not my_pid/my_ppid: the
 * caller may be a vfork child, in which no fork handler ran. */
static void commit_from_vfork_child(struct ring_record *s, int kind) {
    s->pid = (int)raw(SYS_getpid, 0, 0, 0, 0, 0);
    s->ppid = (int)raw(SYS_getppid, 0, 0, 0, 0, 0);
    ring_commit(s, kind);
}

/* exit() and _exit() end in glibc's _exit, which calls exit_group: a trapped call, one
 * round trip to the recorder per process just to learn its exit status. Instead the
 * helper writes an exit record (the status) and makes the call through the trusted page.
 * The recorder reads the record before it takes the process for ended (supervisor/pids.rs,
 * reap). A full ring: the trapped way, as before. Not under make (nothing traps there:
 * make's processes are not recorded as processes). */
static void helper_exit(int status) {
    struct ring_record *s = ring_reserve(ring, sizeof status);
    if (s) {
        memcpy(s->path, &status, sizeof status);
        commit_from_vfork_child(s, RING_EXIT); /* a shell whose exec failed */
        for (;;) raw(SYS_exit_group, status, 0, 0, 0, 0);
    }
    for (;;) syscall(SYS_exit_group, status);
}

static void redirect_libc_opens(void) {
    unsigned char *nocancel = dlsym(RTLD_NEXT, "__open_nocancel");
    unsigned char *open_ = dlsym(RTLD_NEXT, "__open");
    if (!nocancel || !open_) return;
    struct patch patches[4];
    int n = 0;
    patches[n++] = (struct patch){nocancel, (void *)helper_open};
    if (open_ != nocancel) patches[n++] = (struct patch){open_, (void *)helper_open};
    unsigned char *faccessat_ = dlsym(RTLD_NEXT, "faccessat");
    if (faccessat_) patches[n++] = (struct patch){faccessat_, (void *)helper_faccessat};
    unsigned char *exit_ = dlsym(RTLD_NEXT, "_exit");
    if (exit_ && !unfiltered) patches[n++] = (struct patch){exit_, (void *)helper_exit};
    write_jumps(patches, n);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return (int)fast_openat(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));
int __openat_2(int dirfd, const char *path, int flags) { return (int)fast_openat(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));

/* A PATH search (dash, or a program's own loop) tries execve in one directory after the
 * other: each miss would be a trapped call. A path that does not exist is recorded here
 * as the probe it is; any other execve is made the ordinary, trapped way (the recorder
 * must see every exec). The look itself is not recorded: the record stays what trapping
 * alone gives (strace shows it, as a stat right before the execve). */
int execve(const char *path, char *const argv[], char *const envp[]) {
    const char *p = path;
    __asm__("" : "+r"(p)); /* declared nonnull, yet a caller may pass NULL: EFAULT, not a crash */
    if (active() && p && *p) {
        struct stat st;
        long rc = raw(SYS_newfstatat, AT_FDCWD, (long)path, (long)&st, 0, 0);
        struct ring_record *s;
        if ((rc == -ENOENT || rc == -ENOTDIR) && (s = reserve(AT_FDCWD, path))) {
            commit_from_vfork_child(s, RING_PROBE); /* gcc's driver starting cc1 */
            errno = (int)-rc;
            return -1;
        }
    }
    return (int)syscall(SYS_execve, path, argv, envp);
}

/* glibc's execvp searches PATH with internal execve calls (gcc's driver finding `as`
 * tries every PATH entry): the same search through execve above. */
int execvpe(const char *file, char *const argv[], char *const envp[]) {
    return search_exec(execve, file, getenv("PATH"), argv, envp);
}
int execvp(const char *file, char *const argv[]) {
    return search_exec(execve, file, getenv("PATH"), argv, environ);
}

int stat(const char *path, struct stat *buf) {
    return (int)fast_path_call(SYS_newfstatat, AT_FDCWD, path, (long)buf, 0, 0);
}
int stat64(const char *path, struct stat64 *buf) __attribute__((alias("stat")));
int lstat(const char *path, struct stat *buf) {
    return (int)fast_path_call(SYS_newfstatat, AT_FDCWD, path, (long)buf, AT_SYMLINK_NOFOLLOW, 0);
}
int lstat64(const char *path, struct stat64 *buf) __attribute__((alias("lstat")));
int fstatat(int dirfd, const char *path, struct stat *buf, int flags) {
    if (flags & AT_EMPTY_PATH) return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags);
    return (int)fast_path_call(SYS_newfstatat, dirfd, path, (long)buf, flags, 0);
}
int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags) __attribute__((alias("fstatat")));
/* The stat entry points of glibc before 2.33, which programs built then still call
 * (Debian 12's make does): on x86_64 every version they accept means the kernel's
 * struct stat, as glibc's own implementation says. */
static int stat_version(int ver) {
    if (ver == 0 || ver == 1) return 1;
    errno = EINVAL;
    return 0;
}
int __xstat(int ver, const char *path, struct stat *buf) {
    return stat_version(ver) ? stat(path, buf) : -1;
}
int __xstat64(int ver, const char *path, struct stat64 *buf) __attribute__((alias("__xstat")));
int __lxstat(int ver, const char *path, struct stat *buf) {
    return stat_version(ver) ? lstat(path, buf) : -1;
}
int __lxstat64(int ver, const char *path, struct stat64 *buf) __attribute__((alias("__lxstat")));
int __fxstatat(int ver, int dirfd, const char *path, struct stat *buf, int flags) {
    return stat_version(ver) ? fstatat(dirfd, path, buf, flags) : -1;
}
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *buf, int flags)
    __attribute__((alias("__fxstatat")));
/* euidaccess/eaccess: access with the effective ids (Debian 12's make calls eaccess). */
int euidaccess(const char *path, int mode) {
    return (int)fast_path_call(SYS_faccessat2, AT_FDCWD, path, mode, AT_EACCESS, 0);
}
int eaccess(const char *path, int mode) __attribute__((alias("euidaccess")));

int access(const char *path, int mode) {
    return (int)fast_path_call(SYS_faccessat2, AT_FDCWD, path, mode, 0, 0);
}
int faccessat(int dirfd, const char *path, int mode, int flags) __attribute__((alias("helper_faccessat")));
