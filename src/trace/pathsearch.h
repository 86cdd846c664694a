/* execvp's PATH search, as glibc 2.36 makes it (posix/execvpe.c), with the exec call
 * given: glibc's own execvp calls execve internally, where no preloaded library sees it,
 * so every directory without the program would be a trapped call. The preload helper
 * searches with its own execve (a missing candidate becomes a probe in the ring); the
 * shim with the candidates it already knows to be missing left out.
 *
 * Same results as glibc: a file name with a '/' is run as given; PATH unset means
 * "/bin:/usr/bin"; an empty entry is the current directory; a file the kernel cannot run
 * (ENOEXEC) is run by /bin/sh; EACCES is reported only when no candidate could run.
 */
#ifndef MAKESCOPE_PATHSEARCH_H
#define MAKESCOPE_PATHSEARCH_H

#include <errno.h>
#include <limits.h>
#include <string.h>

typedef int (*exec_fn)(const char *path, char *const argv[], char *const envp[]);

static void search_script(exec_fn exec, const char *file, char *const argv[], char *const envp[]) {
    size_t argc = 0;
    while (argv[argc]) argc++;
    char *new_argv[argc > 1 ? argc + 2 : 3];
    new_argv[0] = (char *)"/bin/sh";
    new_argv[1] = (char *)file;
    if (argc > 1)
        memcpy(new_argv + 2, argv + 1, argc * sizeof(char *));
    else
        new_argv[2] = NULL;
    exec(new_argv[0], new_argv, envp);
}

/* Run `file` found along `path` (NULL: "/bin:/usr/bin"). Returns only on failure, -1
 * with errno set. */
static int search_exec(exec_fn exec, const char *file, const char *path, char *const argv[],
                       char *const envp[]) {
    if (!*file) {
        errno = ENOENT;
        return -1;
    }
    if (strchr(file, '/')) {
        exec(file, argv, envp);
        if (errno == ENOEXEC) search_script(exec, file, argv, envp);
        return -1;
    }
    if (!path) path = "/bin:/usr/bin";
    size_t file_len = strnlen(file, NAME_MAX + 1) + 1;
    size_t path_len = strnlen(path, PATH_MAX - 1) + 1;
    if (file_len - 1 > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char buffer[path_len + file_len + 1];
    int got_eacces = 0;
    for (const char *p = path;;) {
        const char *subp = strchr(p, ':');
        if (!subp) subp = p + strlen(p);
        if ((size_t)(subp - p) < path_len) {
            memcpy(buffer, p, (size_t)(subp - p));
            char *end = buffer + (subp - p);
            *end = '/';
            memcpy(end + (p < subp), file, file_len);
            exec(buffer, argv, envp);
            if (errno == ENOEXEC) search_script(exec, buffer, argv, envp);
            switch (errno) {
            case EACCES:
                got_eacces = 1;
                /* fall through */
            case ENOENT:
            case ESTALE:
            case ENOTDIR:
            case ENODEV:
            case ETIMEDOUT:
                break;
            default:
                return -1;
            }
        }
        if (*subp == '\0') break;
        p = subp + 1;
    }
    if (got_eacces) errno = EACCES;
    return -1;
}

#endif
