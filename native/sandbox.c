/*
 * troupe's own task sandbox, used by the host runtime when troupe runs as
 * root (troupe-spawner), and on a Slurm node by troupe-slurm-helper when the
 * jobs run as root: new PID, mount, UTS and IPC namespaces (and network with netns
 * isolation), the given mounts laid over the host's root, the hostname, a
 * barrier, then the command as the child of the sandbox's PID 1.
 *
 * Why not bubblewrap here: bwrap costs about 2 ms per task on these machines
 * (pivot_root onto a rebuilt root, and a second process per sandbox), which
 * is the whole of troupe's per-task budget; these few system calls cost about
 * 0.3 ms. bwrap stays the sandbox for unprivileged users, where it sets up the
 * user namespace this code does not attempt.
 *
 * Directives (fields before "--"), applied in this order:
 *   hostname NAME | netns | chdir DIR | env KEY=VALUE
 *   user UID GID: the command runs as this user, unprivileged (else as root)
 *   mkdir DIR: made on the host (with its parents) before anything else,
 *     owned by the command's user
 *   read-only-root: the host's mounts, all of them, read-only in the sandbox
 *     (before the mounts below, which are writable unless they say ro-)
 *   tmpfs PATH | bind SRC DST | ro-bind SRC DST | symlink TEXT PATH | proc PATH
 *   dev PATH: a minimal /dev (sandbox-confine.c)
 *   hide PATH: an empty tmpfs over PATH that anyone may pass through (0755), for
 *     the mount points of what the task may see in there
 *   seal PATH: the mount at PATH made read-only (not those below it)
 *   ro-data CONTENTS DST: a read-only file with these contents at DST (staged
 *   in the private /tmp, bound, then unlinked: nothing of it on the host)
 * Every bind source is opened before any mount, so a tmpfs laid over a
 * directory can take binds of what that directory held (files: placed where
 * no file exists yet, see src/runtime/host/sandbox.ts).
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/mount.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *sandbox_parse(sandbox_t *box, const char **fields, size_t count) {
  memset(box, 0, offsetof(sandbox_t, mounts));
  box->mount_count = 0;
  box->env_count = 0;
  box->argv = NULL;
  box->inherit_env = 0;
  size_t i = 0;
#define NEED(n) \
  if (i + (n) >= count) return "sandbox directive without its arguments";
  while (i < count) {
    const char *d = fields[i];
    if (strcmp(d, "--") == 0) {
      if (i + 1 >= count) return "sandbox request without a command";
      box->argv = (char **)&fields[i + 1];
      return NULL;
    }
    if (strcmp(d, "netns") == 0 || strcmp(d, "read-only-root") == 0) {
      if (d[0] == 'n') box->netns = 1;
      else box->read_only_root = 1;
      i += 1;
      continue;
    }
    if (strcmp(d, "user") == 0) {
      NEED(2);
      char *end_uid, *end_gid;
      unsigned long uid = strtoul(fields[i + 1], &end_uid, 10), gid = strtoul(fields[i + 2], &end_gid, 10);
      if (*fields[i + 1] == '\0' || *end_uid || *fields[i + 2] == '\0' || *end_gid || uid > 0xfffffffeUL || gid > 0xfffffffeUL)
        return "user wants a numeric uid and gid";
      box->drop_to_user = 1;
      box->uid = (uid_t)uid;
      box->gid = (gid_t)gid;
      i += 3;
      continue;
    }
    if (strcmp(d, "hostname") == 0 || strcmp(d, "chdir") == 0 || strcmp(d, "env") == 0 || strcmp(d, "mkdir") == 0) {
      NEED(1);
      if (d[0] == 'h') box->hostname = fields[i + 1];
      else if (d[0] == 'c') box->cwd = fields[i + 1];
      else if (d[0] == 'm') {
        if (box->mkdir_count >= sizeof box->mkdirs / sizeof box->mkdirs[0]) return "too many directories to make";
        box->mkdirs[box->mkdir_count++] = fields[i + 1];
      } else {
        if (box->env_count >= SANDBOX_MAX_ENV) return "too many environment variables";
        box->env[box->env_count++] = (char *)fields[i + 1];
      }
      i += 2;
      continue;
    }
    if (box->mount_count >= SANDBOX_MAX_MOUNTS) return "too many mounts";
    mount_op_t *op = &box->mounts[box->mount_count];
    if (strcmp(d, "tmpfs") == 0 || strcmp(d, "proc") == 0 || strcmp(d, "dev") == 0 || strcmp(d, "hide") == 0 || strcmp(d, "seal") == 0) {
      NEED(1);
      op->kind = d[0] == 't' ? MOUNT_TMPFS : d[0] == 'p' ? MOUNT_PROC : d[0] == 'd' ? MOUNT_DEV : d[0] == 'h' ? MOUNT_HIDE : MOUNT_SEAL;
      op->a = fields[i + 1];
      i += 2;
    } else if (strcmp(d, "bind") == 0 || strcmp(d, "ro-bind") == 0 || strcmp(d, "symlink") == 0 || strcmp(d, "ro-data") == 0) {
      NEED(2);
      op->kind = d[0] == 'b' ? MOUNT_BIND : d[0] == 's' ? MOUNT_SYMLINK : d[3] == 'b' ? MOUNT_RO_BIND : MOUNT_DATA;
      op->a = fields[i + 1];
      op->b = fields[i + 2];
      i += 3;
    } else {
      return "unknown sandbox directive";
    }
    box->mount_count++;
  }
  return "sandbox request without \"--\" and a command";
#undef NEED
}

static int spawner_pidfd = -1;

void sandbox_remember_spawner(void) { spawner_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0); }

void sandbox_die_with_spawner(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The death signal is only armed now; if the spawner died before, its pidfd says so. */
  if (spawner_pidfd >= 0) {
    struct pollfd gone = {.fd = spawner_pidfd, .events = POLLIN};
    if (poll(&gone, 1, 0) > 0) _exit(1);
  }
}

/*
 * With no new stack, the raw clone system call behaves as fork (x86_64 and
 * arm64 argument order; the spawner has a single thread and PID 1 of the
 * sandbox never uses threads, so glibc's fork bookkeeping is not needed).
 */
pid_t sandbox_clone(const sandbox_t *box, int from_template) {
  /* From a template, the mount namespace comes later: the template's, copied (sandbox-template.c). */
  long flags = (from_template ? 0 : CLONE_NEWNS) | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  if (box->netns) flags |= CLONE_NEWNET;
  return (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
}

void close_other_fds(int from) {
  if (syscall(SYS_close_range, (unsigned)from, ~0U, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = from; fd < max; fd++) close((int)fd);
}

static void sandbox_mkdir_p(const char *path) {
  char buffer[4096];
  if (strlen(path) >= sizeof buffer) sandbox_fail("path too long: %s", path);
  strcpy(buffer, path);
  for (char *p = buffer + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buffer, 0755) && errno != EEXIST) sandbox_fail("cannot create %s: %s", buffer, strerror(errno));
    *p = '/';
  }
  if (mkdir(buffer, 0755) && errno != EEXIST) sandbox_fail("cannot create %s: %s", buffer, strerror(errno));
}

/* A mount point like the source: a directory, or an empty file. */
static void sandbox_mount_point(const char *target, int source_is_dir) {
  struct stat st;
  if (lstat(target, &st) == 0) return;
  if (source_is_dir) {
    sandbox_mkdir_p(target);
    return;
  }
  char parent[4096];
  snprintf(parent, sizeof parent, "%s", target);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    sandbox_mkdir_p(parent);
  }
  int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) sandbox_fail("cannot create the mount point %s: %s", target, strerror(errno));
  close(fd);
}

/*
 * Makes the mount at `target` read-only, with everything mounted below it
 * (AT_RECURSIVE) or alone (0), keeping its nosuid/nodev/noexec; a plain
 * remount of the top mount where the kernel has no mount_setattr.
 */
void sandbox_make_read_only(const char *target, unsigned int recursive) {
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, AT_FDCWD, target, recursive, &attr, sizeof attr) == 0) return;
  if (errno != ENOSYS) sandbox_fail("cannot make %s read-only: %s", target, strerror(errno));
  struct statvfs vfs;
  unsigned long keep = 0;
  if (statvfs(target, &vfs) == 0) {
    if (vfs.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (vfs.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (vfs.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
  }
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL)) sandbox_fail("cannot make %s read-only: %s", target, strerror(errno));
}

/* A bind of a host directory the task may write: the copy of a read-only mount is read-only until told. */
static void make_writable(const char *target) {
  struct mount_attr attr = {.attr_clr = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, AT_FDCWD, target, 0, &attr, sizeof attr) == 0) return;
  if (errno != ENOSYS) sandbox_fail("cannot make %s writable: %s", target, strerror(errno));
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND, NULL)) sandbox_fail("cannot make %s writable: %s", target, strerror(errno));
}

/* A read-only file with `contents` at `target`, from a staging file in the private /tmp that is unlinked once bound. */
static void place_data(const char *contents, const char *target) {
  char staged[] = "/tmp/.troupe-data-XXXXXX";
  int fd = mkstemp(staged);
  if (fd < 0) sandbox_fail("cannot stage %s in the private /tmp: %s", target, strerror(errno));
  fchmod(fd, 0644); /* readable by a task that drops root, as the host's would be */
  size_t len = strlen(contents);
  for (size_t at = 0; at < len;) {
    ssize_t n = write(fd, contents + at, len - at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) sandbox_fail("cannot stage %s: %s", target, strerror(errno));
    at += (size_t)n;
  }
  close(fd);
  sandbox_mount_point(target, 0);
  if (mount(staged, target, NULL, MS_BIND, NULL)) sandbox_fail("cannot place %s: %s", target, strerror(errno));
  sandbox_make_read_only(target, AT_RECURSIVE);
  unlink(staged);
}

/* Our mounts stay ours, and the host's later ones (writable, they would not be read-only here) stay out. */
void sandbox_private_root(int read_only) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) sandbox_fail("cannot make / a private mount: %s", strerror(errno));
  if (!read_only) return;
  /* Every mount under /, at once; without mount_setattr (Linux < 5.12) a remount would miss the ones below. */
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof attr))
    sandbox_fail("cannot make the host's mounts read-only (%s): this kernel needs Linux 5.12's mount_setattr; TROUPE_SANDBOX=bwrap uses bubblewrap",
                 strerror(errno));
}

void sandbox_hide(const char *path) {
  if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k")) sandbox_fail("cannot hide %s: %s", path, strerror(errno));
}

void sandbox_apply(const sandbox_t *box, const mount_op_t *op, int source, int detached) {
  switch (op->kind) {
    case MOUNT_TMPFS: {
      struct stat st;
      unsigned mode = stat(op->a, &st) == 0 ? (st.st_mode & 07777) : 0755;
      if (stat(op->a, &st) != 0) sandbox_mkdir_p(op->a);
      char options[32];
      snprintf(options, sizeof options, "mode=%o", mode);
      if (mount("tmpfs", op->a, "tmpfs", MS_NOSUID | MS_NODEV, options)) sandbox_fail("cannot mount a tmpfs on %s: %s", op->a, strerror(errno));
      break;
    }
    case MOUNT_DATA:
      place_data(op->a, op->b);
      break;
    case MOUNT_HIDE:
      sandbox_hide(op->a);
      break;
    case MOUNT_SEAL:
      sandbox_make_read_only(op->a, 0);
      break;
    case MOUNT_DEV:
      sandbox_mount_dev(op->a);
      break;
    case MOUNT_PROC:
      if (mount("proc", op->a, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) sandbox_fail("cannot mount proc on %s: %s", op->a, strerror(errno));
      break;
    case MOUNT_SYMLINK:
      if (symlink(op->a, op->b) && errno != EEXIST) sandbox_fail("cannot make the symlink %s: %s", op->b, strerror(errno));
      break;
    case MOUNT_BIND:
    case MOUNT_RO_BIND: {
      struct stat st;
      if (fstat(source, &st)) sandbox_fail("cannot bind %s: %s", op->a, strerror(errno));
      sandbox_mount_point(op->b, S_ISDIR(st.st_mode));
      if (detached) {
        /* A tree open_tree() cloned in the host's mount namespace, attached here. */
        if (syscall(SYS_move_mount, source, "", AT_FDCWD, op->b, MOVE_MOUNT_F_EMPTY_PATH))
          sandbox_fail("cannot bind %s on %s: %s", op->a, op->b, strerror(errno));
      } else {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", source);
        if (mount(path, op->b, NULL, MS_BIND | MS_REC, NULL)) sandbox_fail("cannot bind %s on %s: %s", op->a, op->b, strerror(errno));
      }
      if (op->kind == MOUNT_RO_BIND) sandbox_make_read_only(op->b, AT_RECURSIVE);
      else if (box->read_only_root) make_writable(op->b);
      close(source);
      break;
    }
  }
}

int *sandbox_open_sources(const sandbox_t *box, int detached) {
  static int sources[SANDBOX_MAX_MOUNTS];
  for (size_t i = 0; i < box->mount_count; i++) {
    const mount_op_t *op = &box->mounts[i];
    sources[i] = -1;
    if (op->kind != MOUNT_BIND && op->kind != MOUNT_RO_BIND) continue;
    sources[i] = detached ? (int)syscall(SYS_open_tree, AT_FDCWD, op->a, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
                          : open(op->a, O_PATH | O_CLOEXEC);
    if (sources[i] < 0) sandbox_fail("cannot bind %s: %s", op->a, strerror(errno));
  }
  return sources;
}

static void apply_mounts(const sandbox_t *box) {
  /* Sources first: a later tmpfs may cover them. */
  const int *sources = sandbox_open_sources(box, 0);
  sandbox_private_root(box->read_only_root);
  for (size_t i = 0; i < box->mount_count; i++) sandbox_apply(box, &box->mounts[i], sources[i], 0);
}

/*
 * PID 1 of the task's PID namespace. Its stdin/stdout/stderr are the task's,
 * fd 3 the status channel, fd 4 the barrier. When the command ends, PID 1
 * ends, and with it every process left in the namespace.
 *
 * The barrier's messages, one a line (the last may lack its newline):
 *   go                 start the command;
 *   restart GRACE_MS   OSMO's restart in place (a sibling was rescheduled):
 *                      SIGTERM to the command, SIGKILL to every process of the
 *                      namespace after GRACE_MS, all of them reaped; then
 *                      {"stopped": CODE} on fd 3 and the sandbox (its /tmp,
 *                      its files, its address) waits for the next "go".
 * The end of the barrier before a "go" means troupe stopped us: no command.
 */
static volatile pid_t command_pid;

/* PID 1 of a namespace gets no signal it has no handler for: pass them on to the command. */
static void forward_signal(int signo) {
  if (command_pid > 0) kill(command_pid, signo);
}

static char barrier_buffer[256];
static size_t barrier_length;

/* The next message of the barrier into `line`: 1, or 0 at its end (a last line without newline counts). */
static int next_message(char *line, size_t size) {
  for (;;) {
    char *newline = memchr(barrier_buffer, '\n', barrier_length);
    if (newline || barrier_length == sizeof barrier_buffer) {
      size_t length = newline ? (size_t)(newline - barrier_buffer) : barrier_length;
      snprintf(line, size, "%.*s", (int)length, barrier_buffer);
      size_t used = newline ? length + 1 : length;
      memmove(barrier_buffer, barrier_buffer + used, barrier_length - used);
      barrier_length -= used;
      return 1;
    }
    ssize_t n = read(4, barrier_buffer + barrier_length, sizeof barrier_buffer - barrier_length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (barrier_length == 0) return 0;
      snprintf(line, size, "%.*s", (int)barrier_length, barrier_buffer);
      barrier_length = 0;
      return 1;
    }
    barrier_length += (size_t)n;
  }
}

/* Blocks until "go" (1) or the barrier's end (0); other messages mean nothing while no command runs. */
static int wait_for_go(void) {
  char line[64];
  while (next_message(line, sizeof line))
    if (strcmp(line, "go") == 0) return 1;
  return 0;
}

static pid_t start_command(sandbox_t *box, int signal_fd) {
  pid_t command = fork();
  if (command < 0) sandbox_fail("cannot fork the command: %s", strerror(errno));
  if (command > 0) return command;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  close(3);
  close(4);
  close(signal_fd);
  setsid();
  if (box->drop_to_user) sandbox_drop_privileges(box->uid, box->gid);
  if (!box->inherit_env) {
    box->env[box->env_count] = NULL;
    environ = box->env;
  }
  execvp(box->argv[0], box->argv);
  fprintf(stderr, "troupe: cannot run %s: %s\n", box->argv[0], strerror(errno));
  _exit(127);
}

/* Every process of the namespace but PID 1, killed and reaped (again until none is left: a fork may race kill(-1)). */
static void kill_the_rest(void) {
  for (;;) {
    if (kill(-1, SIGKILL) != 0 && errno == ESRCH) return;
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
      ;
    if (errno != ECHILD) return;
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sandbox_make_dirs(const sandbox_t *box) {
  for (size_t i = 0; i < box->mkdir_count; i++) {
    sandbox_mkdir_p(box->mkdirs[i]);
    if (box->drop_to_user && chown(box->mkdirs[i], box->uid, box->gid))
      sandbox_fail("cannot give %s to the task's user: %s", box->mkdirs[i], strerror(errno));
  }
}

void sandbox_enter(sandbox_t *box) {
  if (box->hostname && sethostname(box->hostname, strlen(box->hostname))) sandbox_fail("cannot set the hostname: %s", strerror(errno));
  if (box->cwd && chdir(box->cwd)) sandbox_fail("cannot enter %s: %s", box->cwd, strerror(errno));
  sandbox_supervise(box);
}

void sandbox_init(sandbox_t *box) {
  sandbox_make_dirs(box);
  apply_mounts(box);
  sandbox_enter(box);
}

void sandbox_supervise(sandbox_t *box) {
  if (!wait_for_go()) _exit(0);
  /* Children's ends come through a signalfd, so that one poll waits for them and for the barrier's messages. */
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int signal_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) sandbox_fail("cannot watch the command: %s", strerror(errno));
  int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) signal(forwarded[i], forward_signal);
  command_pid = start_command(box, signal_fd);

  int barrier_open = 1, restarting = 0;
  long long kill_at = -1;
  for (;;) {
    struct pollfd fds[2] = {{.fd = signal_fd, .events = POLLIN}, {.fd = barrier_open ? 4 : -1, .events = POLLIN}};
    int timeout = kill_at < 0 ? -1 : (int)(kill_at > now_ms() ? kill_at - now_ms() : 0);
    if (poll(fds, 2, timeout) < 0 && errno != EINTR) _exit(1);
    if (kill_at >= 0 && now_ms() >= kill_at) {
      kill(-1, SIGKILL); /* the grace of a restart is over */
      kill_at = -1;
    }
    struct signalfd_siginfo info;
    while (read(signal_fd, &info, sizeof info) > 0) {
    }
    int status, code = -1;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
      if (pid == command_pid) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    /* Orphans of the task, adopted by PID 1, are reaped above and otherwise ignored. */
    if (code >= 0 && !restarting) {
      dprintf(3, "{\"exit-code\": %d}\n", code);
      _exit(code);
    }
    if (code >= 0) {
      command_pid = 0;
      kill_the_rest();
      kill_at = -1;
      restarting = 0;
      dprintf(3, "{\"stopped\": %d}\n", code);
      if (!barrier_open || !wait_for_go()) _exit(0);
      command_pid = start_command(box, signal_fd);
      continue;
    }
    if (barrier_open && (fds[1].revents & (POLLIN | POLLHUP))) {
      char line[64];
      if (!next_message(line, sizeof line)) {
        barrier_open = 0; /* troupe let go of the barrier: the command runs to its end */
      } else if (strncmp(line, "restart ", 8) == 0 && !restarting) {
        restarting = 1;
        kill(command_pid, SIGTERM);
        kill_at = now_ms() + strtol(line + 8, NULL, 10);
      }
    }
  }
}
