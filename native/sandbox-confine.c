/*
 * What keeps a task from the host beyond its mounts (sandbox.c): a minimal
 * /dev, and the command's process made unprivileged before it runs (its own
 * uid and gid, no supplementary groups, no capabilities in any set, and
 * no_new_privs, so no setuid binary or file capability gives any back).
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void sandbox_fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "troupe sandbox: ");
  vfprintf(stderr, format, args);
  fprintf(stderr, "\n");
  va_end(args);
  _exit(1);
}

/* The devices any program may expect; block devices, kmsg, mem and the rest of the host's stay out. */
static const char *const harmless_devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
#define DEVICE_COUNT (sizeof harmless_devices / sizeof harmless_devices[0])

/* The tmpfs, the host's harmless devices bound in it, the mount points of pts and shm, and the fd links. */
void sandbox_mount_dev_base(const char *path) {
  /* The host's nodes, held before the tmpfs covers them (path is /dev itself). */
  int nodes[DEVICE_COUNT];
  for (size_t i = 0; i < DEVICE_COUNT; i++) {
    char host[64];
    snprintf(host, sizeof host, "/dev/%s", harmless_devices[i]);
    nodes[i] = open(host, O_PATH | O_CLOEXEC);
  }
  if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k"))
    sandbox_fail("cannot mount a tmpfs on %s: %s", path, strerror(errno));
  char at[4096];
  for (size_t i = 0; i < DEVICE_COUNT; i++) {
    if (nodes[i] < 0) continue; /* the host has none: neither has the task */
    snprintf(at, sizeof at, "%s/%s", path, harmless_devices[i]);
    int fd = open(at, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) sandbox_fail("cannot create %s: %s", at, strerror(errno));
    close(fd);
    char source[64];
    snprintf(source, sizeof source, "/proc/self/fd/%d", nodes[i]);
    if (mount(source, at, NULL, MS_BIND, NULL)) sandbox_fail("cannot bind %s: %s", at, strerror(errno));
    close(nodes[i]);
  }
  snprintf(at, sizeof at, "%s/pts", path);
  if (mkdir(at, 0755)) sandbox_fail("cannot create %s: %s", at, strerror(errno));
  snprintf(at, sizeof at, "%s/shm", path);
  if (mkdir(at, 01777)) sandbox_fail("cannot create %s: %s", at, strerror(errno));
  const char *links[][2] = {{"pts/ptmx", "ptmx"},           {"/proc/self/fd", "fd"},          {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    snprintf(at, sizeof at, "%s/%s", path, links[i][1]);
    if (symlink(links[i][0], at)) sandbox_fail("cannot make the symlink %s: %s", at, strerror(errno));
  }
}

/* What no two tasks may share: pseudo-terminals of its own (not the host's, nor another task's), and shared memory. */
void sandbox_mount_dev_own(const char *path) {
  char at[4096];
  snprintf(at, sizeof at, "%s/pts", path);
  if (mount("devpts", at, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"))
    sandbox_fail("cannot mount devpts on %s: %s", at, strerror(errno));
  snprintf(at, sizeof at, "%s/shm", path);
  if (mount("tmpfs", at, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")) sandbox_fail("cannot mount a tmpfs on %s: %s", at, strerror(errno));
}

void sandbox_mount_dev(const char *path) {
  sandbox_mount_dev_base(path);
  sandbox_mount_dev_own(path);
}

static int last_capability(void) {
  int last = CAP_LAST_CAP;
  FILE *file = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (file) {
    if (fscanf(file, "%d", &last) != 1) last = CAP_LAST_CAP;
    fclose(file);
  }
  return last;
}

void sandbox_drop_privileges(uid_t uid, gid_t gid) {
  /* The bounding set first: dropping it needs CAP_SETPCAP, which the uid change takes away. */
  for (int cap = 0; cap <= last_capability(); cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL) sandbox_fail("cannot drop capability %d: %s", cap, strerror(errno));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
    sandbox_fail("cannot clear the ambient capabilities: %s", strerror(errno));
  if (setgroups(0, NULL)) sandbox_fail("cannot clear the supplementary groups: %s", strerror(errno));
  if (setresgid(gid, gid, gid)) sandbox_fail("cannot become group %u: %s", (unsigned)gid, strerror(errno));
  if (setresuid(uid, uid, uid)) sandbox_fail("cannot become user %u: %s", (unsigned)uid, strerror(errno));
  /* Leaving uid 0 cleared the permitted and effective sets; the inheritable one stays unless cleared. */
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct none[2];
  memset(none, 0, sizeof none);
  if (syscall(SYS_capset, &header, none)) sandbox_fail("cannot clear the capabilities: %s", strerror(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) sandbox_fail("cannot set no_new_privs: %s", strerror(errno));
}
