/*
 * troupe-init: the entrypoint troupe gives every container. It waits for the
 * group's release, a file named "go" appearing in /.troupe/ctl (a directory
 * troupe mounts from the host), then starts the task's command, so that every
 * member's command starts at once although the containers came up one by one.
 * It stays PID 1, as the host runtime's sandboxes do: a command that is PID 1
 * would get no SIGTERM it has no handler for (so a stop would wait for the
 * kill), and nothing would reap its orphans. Signals are passed on to the
 * command; the container ends with the command's exit code (128 + N for a
 * signal N). Static, so it runs in any image, with or without a shell.
 *
 * It tells troupe, through files in the control directory:
 *   ready    written once it runs, before the command can: "iflink N", the
 *            host-side index of its network interface's peer (so troupe can
 *            isolate that bridge port); troupe reads it before the release;
 *   verdict  written when the command has ended: "verdict NONCE CODE OOM",
 *            its exit code (128 + N for a signal N) and whether the memory
 *            cgroup killed it (the oom_kill count went up; also said on
 *            stderr).
 * The task can write the control directory too, so the verdict is signed with
 * a secret it cannot know: a nonce troupe writes into "go", which troupe-init
 * reads and removes before the command starts (and when it cannot remove it,
 * it runs nothing: fail closed). troupe-init is not dumpable
 * (PR_SET_DUMPABLE 0), so the task cannot read its memory, nor anything else
 * under /proc/1, without CAP_SYS_PTRACE, which containers do not have.
 * troupe takes no verdict without its nonce.
 * The verdict itself holds the nonce in the clear, so nothing of the task may
 * be left to read it: when the command ends, troupe-init first kills every
 * other process of the container (kill(-1, SIGKILL), from PID 1 of its PID
 * namespace) and reaps them all, and only then writes the verdict. Otherwise
 * an orphan of the task watching the directory could read the nonce from the
 * real verdict and rename a forged one over it. The control directory is the
 * attempt's own, mounted into this container only.
 *
 * OSMO's restart in place (a sibling was rescheduled): troupe writes
 * "restart KEY GRACE_MS", KEY the second word of "go" (taken and removed
 * with the nonce, so the task never saw it; that it may read the request
 * once made is harmless: the key is good for this restart only). troupe-init
 * sends the command SIGTERM, kills every process of the container after
 * GRACE_MS (or once the command has ended), reaps them all, writes
 * "stopped NONCE CODE", and waits for the next "go" (a new nonce and key)
 * to start the command again, in the same container: its files survive.
 *
 * An owner (`troupe-init --owner-fd=N -- COMMAND...`): fd N is one end of a
 * socket whose other end only the process that ran `podman run` holds (a
 * Slurm step's helper). conmon leaves the step, so a helper killed outright
 * (Slurm's SIGKILL after its KillWait) could not remove its container; the
 * end of file on fd N says it is gone, and troupe-init then ends the whole
 * container (every process of it, then itself, with 137) at once, waiting or
 * running. The command never inherits the fd.
 *
 * On Kubernetes (`troupe-init --kubernetes POD_INFO_DIR LAUNCH_DIR`, k8s-holder.c): the barrier's holder of a
 * pod whose image may have no shell; none of the above applies there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "k8s-holder.h"

#define CONTROL_DIR "/.troupe/ctl"
#define GO_FILE CONTROL_DIR "/go"
#define RESTART_FILE CONTROL_DIR "/restart"

/* The owner's socket (--owner-fd), -1 without one. */
static int owner_fd = -1;

/* The memory cgroup's count of OOM kills (cgroup v2, else v1); -1 when unknown. */
static long oom_kills(void) {
  const char *files[] = {"/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"};
  for (size_t i = 0; i < 2; i++) {
    FILE *f = fopen(files[i], "r");
    if (!f) continue;
    char key[64];
    long value;
    while (fscanf(f, "%63s %ld", key, &value) == 2)
      if (strcmp(key, "oom_kill") == 0) {
        fclose(f);
        return value;
      }
    fclose(f);
  }
  return -1;
}

/* Whole or not at all (a rename), from a file of a name the task cannot foresee (mkstemp). */
static void write_control(const char *name, const char *text) {
  char path[256], partial[256];
  snprintf(path, sizeof path, "%s/%s", CONTROL_DIR, name);
  snprintf(partial, sizeof partial, "%s/.%s.XXXXXX", CONTROL_DIR, name);
  int fd = mkostemp(partial, O_CLOEXEC);
  if (fd < 0) return;
  size_t length = strlen(text);
  int whole = write(fd, text, length) == (ssize_t)length;
  fchmod(fd, 0644);
  if (close(fd) == 0 && whole && rename(partial, path) == 0) return;
  unlink(partial);
}

/* At most size - 1 bytes of `word`, terminated. */
static void copy_word(char *to, const char *word, size_t size) {
  size_t length = strnlen(word, size - 1);
  memcpy(to, word, length);
  to[length] = 0;
}

/* The release's nonce and restart key: the words of "go", which is removed before the command can see it. */
static void take_nonce(char *nonce, char *key, size_t size) {
  nonce[0] = key[0] = 0;
  int fd = open(GO_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    char text[512];
    ssize_t n = read(fd, text, sizeof text - 1);
    text[n > 0 ? n : 0] = 0;
    char *rest = text + strcspn(text, " \t\r\n");
    if (*rest) *rest++ = 0;
    rest[strcspn(rest, " \t\r\n")] = 0;
    copy_word(nonce, text, size);
    copy_word(key, rest, size);
    close(fd);
  }
  /* Fail closed: a "go" left in place would give the task the nonce. */
  if (unlink(GO_FILE) != 0) {
    fprintf(stderr, "troupe-init: cannot remove %s (%s): not running the command\n", GO_FILE, strerror(errno));
    exit(127);
  }
}

/*
 * Every other process of the container killed and reaped (orphans are
 * reparented to PID 1, so all end up as its children). Again until none is
 * left: one forked while kill(-1) went through the list may have been missed.
 * 1 when none is left; 0 when that cannot be said (then no verdict: troupe
 * takes the engine's exit code, which is troupe-init's, the same code).
 */
static int kill_the_rest(void) {
  /* kill(-1) from anything but the PID namespace's init would reach far beyond the container: then no verdict. */
  if (getpid() != 1) return 0;
  for (;;) {
    if (kill(-1, SIGKILL) != 0 && errno == ESRCH) return 1;
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
      ;
    if (errno != ECHILD) return 0; /* cannot happen; do not loop for ever */
  }
}

/*
 * Whether the owner has gone (end of file, or an error, on its socket; it never writes). Then nothing of the
 * container may outlive it: every other process killed, and troupe-init ends with 137, as if killed itself.
 */
static void end_if_owner_gone(short revents) {
  if (owner_fd < 0 || !(revents & (POLLIN | POLLHUP | POLLERR))) return;
  char byte;
  ssize_t n = read(owner_fd, &byte, 1);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
  if (getpid() == 1) kill(-1, SIGKILL);
  _exit(128 + SIGKILL);
}

static void say_ready(void) {
  char text[64] = "iflink 0\n";
  FILE *f = fopen("/sys/class/net/eth0/iflink", "r");
  if (f) {
    long link;
    if (fscanf(f, "%ld", &link) == 1) snprintf(text, sizeof text, "iflink %ld\n", link);
    fclose(f);
  }
  write_control("ready", text);
}

static volatile pid_t command;
/*
 * Set while it waits for a release (from its start): no command runs, and a stop ends troupe-init itself, at
 * once. As PID 1 it would otherwise ignore the SIGTERM of `podman stop`/`rm --force`, which then wait their whole
 * timeout (10 s, the container "stopping" all along) for the SIGKILL that follows.
 */
static volatile sig_atomic_t waiting = 1;

static void forward(int signo) {
  if (waiting) _exit(128 + signo);
  if (command > 0) kill(command, signo);
}

/* Blocks until troupe's "go" is there (inotify on the control directory, or polling without it), or the owner goes. */
static void wait_for_go(void) {
  waiting = 1;
  /* Watch first, then look: a release between the two is not missed. */
  int watch = inotify_init1(IN_CLOEXEC);
  if (watch >= 0 && inotify_add_watch(watch, CONTROL_DIR, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    close(watch);
    watch = -1;
  }
  while (access(GO_FILE, F_OK) != 0) {
    struct pollfd fds[2] = {{.fd = watch, .events = POLLIN}, {.fd = owner_fd, .events = POLLIN}};
    /* No inotify: look every 2 ms. */
    if (poll(fds, 2, watch < 0 ? 2 : -1) < 0) continue;
    end_if_owner_gone(fds[1].revents);
    char events[4096];
    if ((fds[0].revents & POLLIN) && read(watch, events, sizeof events) < 0 && errno != EINTR) {
      close(watch);
      watch = -1;
    }
  }
  if (watch >= 0) close(watch);
  waiting = 0;
}

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define FORWARDED (sizeof forwarded / sizeof forwarded[0])

static pid_t start_command(char **argv) {
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "troupe-init: cannot fork: %s\n", strerror(errno));
    exit(127);
  }
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (size_t i = 0; i < FORWARDED; i++) signal(forwarded[i], SIG_DFL);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "troupe: cannot run %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  return child;
}

/* troupe's restart request, if there is one with this release's key: its grace in ms, else -1. */
static long restart_request(const char *key) {
  if (!key[0]) return -1;
  int fd = open(RESTART_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  char text[256];
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, text, sizeof text - 1) : -1;
  close(fd);
  text[n > 0 ? n : 0] = 0;
  char given[160];
  long grace;
  if (sscanf(text, "restart %159s %ld", given, &grace) != 2 || strcmp(given, key) != 0) return -1;
  unlink(RESTART_FILE);
  return grace < 0 ? 0 : grace;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  /* On Kubernetes (k8s-holder.c): the barrier's holder of a pod, no control directory. */
  if (argc >= 2 && strcmp(argv[1], "--kubernetes") == 0) {
    if (argc != 4) {
      fprintf(stderr, "troupe-init: usage: troupe-init --kubernetes POD_INFO_DIR LAUNCH_DIR\n");
      return 127;
    }
    return kubernetes_holder(argv[2], argv[3]);
  }
  if (argc >= 3 && strncmp(argv[1], "--owner-fd=", 11) == 0 && strcmp(argv[2], "--") == 0) {
    owner_fd = atoi(argv[1] + 11);
    if (owner_fd < 3 || fcntl(owner_fd, F_SETFD, FD_CLOEXEC) != 0 || fcntl(owner_fd, F_SETFL, O_NONBLOCK) != 0) {
      fprintf(stderr, "troupe-init: no owner's socket at fd %s\n", argv[1] + 11);
      return 127;
    }
    argv += 2;
    argc -= 2;
  }
  if (argc < 2) {
    fprintf(stderr, "troupe-init: no command given\n");
    return 127;
  }
  /* Before anything of the task's can run here: its memory and /proc/1 are not the task's to read. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  for (size_t i = 0; i < FORWARDED; i++) signal(forwarded[i], forward);
  say_ready();
  wait_for_go();
  char nonce[128], key[128];
  take_nonce(nonce, key, sizeof nonce);

  /* Children's ends through a signalfd, restart requests through inotify: one poll waits for both. */
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int children = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  int requests = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (requests >= 0 && inotify_add_watch(requests, CONTROL_DIR, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    close(requests);
    requests = -1;
  }
  command = start_command(argv);
  long kills_before = oom_kills();
  int restarting = 0;
  long long kill_at = -1;
  for (;;) {
    struct pollfd fds[3] = {
        {.fd = children, .events = POLLIN}, {.fd = requests, .events = POLLIN}, {.fd = owner_fd, .events = POLLIN}};
    /* Without a signalfd or inotify (neither should be missing), look every 50 ms. */
    int timeout = kill_at >= 0 ? (int)(kill_at > now_ms() ? kill_at - now_ms() : 0) : children < 0 || requests < 0 ? 50 : -1;
    if (poll(fds, 3, timeout) < 0 && errno != EINTR) return 1;
    end_if_owner_gone(fds[2].revents);
    if (kill_at >= 0 && now_ms() >= kill_at) {
      /* The grace of a restart is over (kill(-1) only from the namespace's init: elsewhere it reaches beyond). */
      kill(getpid() == 1 ? -1 : command, SIGKILL);
      kill_at = -1;
    }
    struct signalfd_siginfo info;
    while (children >= 0 && read(children, &info, sizeof info) > 0) {
    }
    char events[4096];
    while (requests >= 0 && read(requests, events, sizeof events) > 0) {
    }
    if (!restarting && command > 0) {
      long grace = restart_request(key);
      if (grace >= 0) {
        restarting = 1;
        kill(command, SIGTERM);
        kill_at = now_ms() + grace;
      }
    }
    int status, ended = 0, code = 0, oom = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != command) continue; /* an orphan of the task, reaped */
      ended = 1;
      oom = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && kills_before >= 0 && oom_kills() > kills_before;
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (!ended) continue;
    command = 0; /* reaped: its pid may be reused */
    if (restarting) {
      /* As for the verdict: nothing of the task may be left to read "stopped" (it holds the nonce). */
      if (!kill_the_rest()) return code; /* cannot happen (troupe-init is PID 1): an end, not a restart */
      char stopped[256];
      snprintf(stopped, sizeof stopped, "stopped %s %d\n", nonce, code);
      write_control("stopped", stopped);
      restarting = 0;
      kill_at = -1;
      wait_for_go();
      take_nonce(nonce, key, sizeof nonce);
      command = start_command(argv);
      kills_before = oom_kills();
      continue;
    }
    if (oom) fprintf(stderr, "troupe: the command was killed for using more memory than its limit\n");
    /* Nothing of the task may see the verdict (it holds the nonce): kill the rest first. */
    if (kill_the_rest()) {
      char verdict[256];
      snprintf(verdict, sizeof verdict, "verdict %s %d %d\n", nonce, code, oom);
      write_control("verdict", verdict);
    }
    return code;
  }
}
