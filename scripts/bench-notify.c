/* The round trip of one trapped system call through a seccomp listener, by how the
   supervisor waits for it: scripts/bench-notify.sh runs it (BENCHMARKS.md, "Fourth
   session").

     bench-notify WAIT SYNC CALLS
     WAIT: epoll | poll | recv   (epoll_wait, poll(2), or a blocking NOTIF_RECV)
     SYNC: 0 | 1                 (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on the listener)

   A child installs a filter notifying openat, sends the listener to the parent and
   makes CALLS openat calls; the parent answers each like makescope's supervisor does
   (receive, read the path with process_vm_readv, answer CONTINUE). Prints microseconds
   per call as the child measured them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW (4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif

static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void
send_fd (int sock, int fd)
{
  char byte = 0, control[CMSG_SPACE (sizeof (int))];
  struct iovec io = { &byte, 1 };
  struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = control,
                      .msg_controllen = sizeof control };
  struct cmsghdr *h = CMSG_FIRSTHDR (&m);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (h), &fd, sizeof (int));
  if (sendmsg (sock, &m, 0) < 0)
    _exit (2);
}

static int
receive_fd (int sock)
{
  char byte, control[CMSG_SPACE (sizeof (int))];
  struct iovec io = { &byte, 1 };
  struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = control,
                      .msg_controllen = sizeof control };
  int fd = -1;
  if (recvmsg (sock, &m, 0) > 0 && CMSG_FIRSTHDR (&m))
    memcpy (&fd, CMSG_DATA (CMSG_FIRSTHDR (&m)), sizeof (int));
  return fd;
}

int
main (int argc, char **argv)
{
  if (argc != 4)
    {
      fprintf (stderr, "usage: bench-notify epoll|poll|recv 0|1 CALLS\n");
      return 2;
    }
  const char *wait = argv[1];
  int sync = atoi (argv[2]), calls = atoi (argv[3]);
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM, 0, sv))
    return 1;
  pid_t child = fork ();
  if (child == 0)
    {
      struct sock_filter f[] = {
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      struct sock_fprog prog = { 4, f };
      prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      int listener = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                              SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
      if (listener < 0)
        _exit (3);
      send_fd (sv[1], listener);
      close (listener);
      char go;
      if (read (sv[1], &go, 1) != 1)
        _exit (4);
      double start = now ();
      for (int i = 0; i < calls; i++)
        {
          int fd = openat (AT_FDCWD, "/nonexistent/bench-notify", O_RDONLY);
          if (fd >= 0)
            close (fd);
        }
      printf ("%s sync=%d: %.2f us/call\n", wait, sync, (now () - start) / calls * 1e6);
      fflush (stdout);
      _exit (0);
    }
  int listener = receive_fd (sv[0]);
  if (listener < 0)
    return 1;
  if (sync)
    {
      __u64 flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
      if (ioctl (listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) < 0)
        perror ("SECCOMP_IOCTL_NOTIF_SET_FLAGS");
    }
  int ep = epoll_create1 (0);
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = listener };
  epoll_ctl (ep, EPOLL_CTL_ADD, listener, &ev);
  if (write (sv[0], "g", 1) != 1)
    return 1;
  for (int i = 0; i < calls; i++)
    {
      if (strcmp (wait, "epoll") == 0)
        {
          struct epoll_event e;
          epoll_wait (ep, &e, 1, -1);
        }
      else if (strcmp (wait, "poll") == 0)
        {
          struct pollfd p = { listener, POLLIN, 0 };
          poll (&p, 1, -1);
        }
      struct seccomp_notif req;
      memset (&req, 0, sizeof req);
      if (ioctl (listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        {
          perror ("SECCOMP_IOCTL_NOTIF_RECV");
          break;
        }
      char path[256];
      struct iovec local = { path, sizeof path };
      struct iovec remote = { (void *) req.data.args[1], sizeof path };
      process_vm_readv (req.pid, &local, 1, &remote, 1, 0);
      struct seccomp_notif_resp resp;
      memset (&resp, 0, sizeof resp);
      resp.id = req.id;
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      ioctl (listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
  int status;
  waitpid (child, &status, 0);
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : 1;
}
