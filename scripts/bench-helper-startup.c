/* What the fast path's helper adds to a process's start-up, without any filter or
 * recorder: spawn PROG N times for each variant, interleaved, with the helper active (a
 * ring it accepts, as the shim makes one, drained by discarding); print each variant's
 * mean CPU (user + system, from wait4) and wall time per process. A variant is a helper
 * (.so) to preload, or "-" for none.
 *
 *   cc -O2 -o /tmp/bench-helper-startup scripts/bench-helper-startup.c
 *   /tmp/bench-helper-startup 2000 /bin/true - OLD.so NEW.so
 *
 * (The helper is built as target/release/build/makescope-HASH/out/makescope-preload.so.) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../src/trace/ring.h"

extern char **environ;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc - 3 > 16) {
        fprintf(stderr, "usage: %s N PROG VARIANT... (a helper .so, or - for none; at most 16)\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), variants = argc - 3;
    const char *prog = argv[2];
    int fd = memfd_create("ring", MFD_ALLOW_SEALING);
    size_t size = 4096 + (size_t)RING_UNITS * RING_UNIT;
    struct ring_header *ring;
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0 ||
        (ring = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        perror("ring");
        return 1;
    }
    ring->nunits = RING_UNITS;
    ring->magic = RING_MAGIC;
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
    char ring_env[64], page_env[] = "MAKESCOPE_TRACE_PAGE=10000000000"; /* FAST_PATH_PAGE */
    snprintf(ring_env, sizeof ring_env, "MAKESCOPE_TRACE_RING=%d", fd);
    int nenv = 0;
    while (environ[nenv]) nenv++;
    char **env = calloc(nenv + 4, sizeof *env);
    memcpy(env, environ, nenv * sizeof *env);
    env[nenv + 1] = page_env;
    env[nenv + 2] = ring_env;
    double cpu[16] = {0}, wall[16] = {0};
    char preload[16][4200];
    for (int v = 0; v < variants; v++)
        snprintf(preload[v], sizeof preload[v], strcmp(argv[3 + v], "-") ? "LD_PRELOAD=%s" : "NO_PRELOAD=%s",
                 argv[3 + v]);
    for (int i = 0; i < n; i++) {
        for (int v = 0; v < variants; v++) {
            env[nenv] = preload[v];
            char *args[] = {(char *)prog, NULL};
            double start = now();
            pid_t pid;
            if (posix_spawn(&pid, prog, NULL, NULL, args, env) != 0) {
                perror(prog);
                return 1;
            }
            int status;
            struct rusage ru;
            wait4(pid, &status, 0, &ru);
            wall[v] += now() - start;
            cpu[v] += ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
            /* Discard what the process recorded: nothing reads the records. */
            ring->tail = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
        }
    }
    for (int v = 0; v < variants; v++)
        printf("%-60s cpu %7.1f us  wall %7.1f us\n", argv[3 + v], cpu[v] / n * 1e6, wall[v] / n * 1e6);
    return 0;
}
