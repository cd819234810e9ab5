/*
 * The least a task's sandbox can cost, without troupe (bench/spawner-floor.mjs
 * compiles and runs it beside troupe-spawner). Runs /bin/true N times, P at
 * once, as `xargs -P P` does, each started one of three ways:
 *   fork        a plain fork and exec: xargs' own cost, no sandbox;
 *   namespaces  a clone into new PID, mount, UTS and IPC namespaces (what
 *               every task of troupe gets as root), `true` their PID 1;
 *   mounts      the same, plus the mounts no task goes without: the host's
 *               mounts made private and read-only, its own /proc and a
 *               private /tmp.
 * No helper process, no protocol, no log file, no PID 1 of troupe's: what is
 * left is the kernel's price of the namespaces and mounts themselves.
 *
 *   cc -O2 -o sandbox-floor bench/sandbox-floor.c
 *   sandbox-floor N P fork|namespaces|mounts      (as root)
 * Exit 0 when every run of `true` exited 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum way { FORK, NAMESPACES, MOUNTS };

static pid_t start(enum way way) {
  long flags = SIGCHLD;
  if (way != FORK) flags |= CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  /* No new stack: the raw clone behaves as fork (x86_64 and arm64 argument order). */
  pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
  if (pid != 0) return pid;
  if (way == MOUNTS) {
    struct mount_attr read_only = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) _exit(90);
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &read_only, sizeof read_only)) _exit(91);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) _exit(92);
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")) _exit(93);
  }
  execl("/bin/true", "true", (char *)NULL);
  _exit(127);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: sandbox-floor N P fork|namespaces|mounts\n");
    return 2;
  }
  int runs = atoi(argv[1]), parallel = atoi(argv[2]);
  enum way way = strcmp(argv[3], "fork") == 0 ? FORK : strcmp(argv[3], "namespaces") == 0 ? NAMESPACES : MOUNTS;
  if (way == MOUNTS && strcmp(argv[3], "mounts") != 0) {
    fprintf(stderr, "sandbox-floor: no way %s (fork, namespaces or mounts)\n", argv[3]);
    return 2;
  }
  int running = 0, started = 0, failed = 0;
  while (started < runs || running > 0) {
    for (; running < parallel && started < runs; running++, started++)
      if (start(way) < 0) {
        perror("sandbox-floor: clone");
        return 1;
      }
    int status;
    if (wait(&status) > 0) {
      running--;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
    }
  }
  if (failed) fprintf(stderr, "sandbox-floor: %d of %d runs failed\n", failed, runs);
  return failed != 0;
}
