/*
 * troupe's keeper: the parent of one task attempt that must outlive troupe
 * (the server: a restart or a crash must not end the work it started).
 *
 * The spawner forks one for a request in "keep" mode. The keeper leaves the
 * spawner's session, starts the task (troupe's own sandbox, or a command as it
 * is) with its output going straight to its log file, and then:
 *  - relays the task's status channel (fd 3: {"child-pid"}, {"exit-code"}) to
 *    the spawner while the spawner is there, so troupe sees what it always saw;
 *  - passes the spawner's "go" on to the task's barrier (fd 4); if the spawner
 *    goes away before "go", the command never started and the task is stopped;
 *    troupe's own sandbox's barrier stays open after "go" for a restart in
 *    place (sandbox.c): what the spawner writes after it is passed on too;
 *  - takes signals for the task from the FIFO <state>/control (a line "N"
 *    signals the task with N): how a later troupe, re-attached, stops it; and
 *    passes on the signals it gets itself (TERM, INT, HUP, QUIT, USR1, USR2);
 *  - once the task has ended, writes <state>/exit, {"code": N, "released": B},
 *    through a rename so that it is read whole or not at all, removes the
 *    FIFO, and exits with the task's code.
 * A troupe that starts again reads <state>/exit, or finds the keeper alive by
 * opening the FIFO for writing (no reader, ENXIO: the keeper is gone).
 */
#define _GNU_SOURCE
#include "keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The keeper's own fds once it has dropped everything of the spawner's. */
enum { KEEP_DEVNULL = 3, KEEP_LOG = 4, KEEP_STATUS = 5, KEEP_BLOCK = 6 };

/* A command run as it is (podman run, bwrap) gets SIGTERM when it is stopped before "go", SIGKILL this much later. */
#define STOP_GRACE_MS 10000
/* After the task ended, how long its status channel may stay open (a descendant holding fd 3). */
#define DRAIN_MS 2000

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void make_dirs(const char *path) {
  char buffer[4096];
  if (snprintf(buffer, sizeof buffer, "%s", path) >= (int)sizeof buffer) return;
  for (char *p = buffer + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(buffer, 0755);
    *p = '/';
  }
  mkdir(buffer, 0755);
}

/* fds 0..count-1 become `wanted` (copied above 10 first, so that no target overwrites a source), the rest are closed. */
static void place_fds(const int *wanted, int count) {
  int moved[8];
  for (int i = 0; i < count; i++) moved[i] = fcntl(wanted[i], F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < count; i++)
    if (moved[i] < 0 || dup2(moved[i], i) < 0) _exit(127);
  close_other_fds(count);
}

static pid_t start_task(const keeper_t *k, const int status_pipe[2], const int block_pipe[2], pid_t keeper) {
  pid_t pid = k->box ? sandbox_clone(k->box, 0) : fork();
  if (pid != 0) return pid;
  /* The task dies with its keeper (never with troupe). */
  if (k->box) sandbox_die_with_spawner();
  else {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != keeper) _exit(1);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  int wanted[5] = {KEEP_DEVNULL, KEEP_LOG, KEEP_LOG, status_pipe[1], block_pipe[0]};
  place_fds(wanted, 5);
  if (k->box) sandbox_init(k->box);
  execvp(k->argv[0], k->argv);
  fprintf(stderr, "troupe: cannot run %s: %s\n", k->argv[0], strerror(errno));
  _exit(127);
}

/*
 * Status lines of the task, scanned for bwrap's (and troupe's sandbox's) {"exit-code": N}, and for
 * {"stopped": N}: the command stopped for a restart in place, not released again yet.
 */
typedef struct {
  char line[512];
  size_t len;
  int seen;
  int code;
  int stopped;
} status_scan_t;

static void scan_status(status_scan_t *scan, const char *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (data[i] != '\n') {
      if (scan->len < sizeof scan->line - 1) scan->line[scan->len++] = data[i];
      continue;
    }
    scan->line[scan->len] = '\0';
    const char *key = strstr(scan->line, "\"exit-code\"");
    const char *colon = key ? strchr(key, ':') : NULL;
    if (colon) {
      scan->seen = 1;
      scan->code = atoi(colon + 1);
    }
    if (strstr(scan->line, "\"stopped\"")) scan->stopped = 1;
    scan->len = 0;
  }
}

static void write_exit(const char *state_dir, int code, int released) {
  char path[4200], temporary[4200], text[96];
  snprintf(path, sizeof path, "%s/exit", state_dir);
  snprintf(temporary, sizeof temporary, "%s/exit.tmp", state_dir);
  int len = snprintf(text, sizeof text, "{\"code\": %d, \"released\": %s}\n", code, released ? "true" : "false");
  int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) != 0 || rename(temporary, path) != 0)
    fprintf(stderr, "troupe keeper: cannot record the exit code in %s: %s\n", path, strerror(errno));
  if (fd >= 0) close(fd);
}

void keeper_main(const keeper_t *k) {
  pid_t self = getpid();
  setsid();
  signal(SIGPIPE, SIG_IGN);
  /* stdin and stdout: nothing; stderr: the task's log, where the keeper's own complaints belong. */
  int wanted[7] = {k->devnull, k->devnull, k->log_fd, k->devnull, k->log_fd, k->status_write, k->block_read};
  place_fds(wanted, 7);
  sandbox_remember_spawner(); /* the sandbox's parent to die with is now this keeper */

  char control_path[4200];
  snprintf(control_path, sizeof control_path, "%s/control", k->state_dir);
  make_dirs(k->state_dir);
  char old_exit[4200];
  snprintf(old_exit, sizeof old_exit, "%s/exit", k->state_dir);
  unlink(old_exit);
  unlink(control_path);
  int control = -1;
  if (mkfifo(control_path, 0600) == 0) control = open(control_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (control < 0) fprintf(stderr, "troupe keeper: no control channel %s: %s\n", control_path, strerror(errno));

  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&handled, forwarded[i]);
  sigprocmask(SIG_BLOCK, &handled, NULL);
  int signals = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);

  int status_pipe[2], block_pipe[2];
  if (signals < 0 || pipe2(status_pipe, O_CLOEXEC) || pipe2(block_pipe, O_CLOEXEC)) {
    fprintf(stderr, "troupe keeper: %s\n", strerror(errno));
    write_exit(k->state_dir, 1, 0);
    _exit(1);
  }
  pid_t task = start_task(k, status_pipe, block_pipe, self);
  if (task < 0) {
    fprintf(stderr, "troupe keeper: cannot start the task: %s\n", strerror(errno));
    write_exit(k->state_dir, 1, 0);
    unlink(control_path);
    _exit(1);
  }
  close(status_pipe[1]);
  close(block_pipe[0]);
  int relay = 1; /* the spawner still reads the status channel */
  if (k->box) {
    char line[64];
    int len = snprintf(line, sizeof line, "{\"child-pid\": %d}\n", (int)task);
    if (write(KEEP_STATUS, line, (size_t)len) < 0) relay = 0;
  }

  status_scan_t scan = {.len = 0, .seen = 0, .code = 0, .stopped = 0};
  int status_fd = status_pipe[0], block_fd = KEEP_BLOCK, release_fd = block_pipe[1];
  int released = 0, ended = 0, wait_code = 0;
  long long kill_at = -1, drain_until = -1;
  char buffer[4096];
  while (!ended || status_fd >= 0) {
    struct pollfd fds[4];
    int n = 0;
    fds[n++] = (struct pollfd){.fd = signals, .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = status_fd, .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = block_fd, .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = ended ? -1 : control, .events = POLLIN};
    long long deadline = ended ? drain_until : kill_at;
    int timeout = deadline < 0 ? -1 : (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0);
    if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) break;
    if (ended && now_ms() >= drain_until) break;
    if (!ended && kill_at >= 0 && now_ms() >= kill_at) {
      kill(task, SIGKILL);
      kill_at = -1;
    }

    if (fds[1].revents) {
      ssize_t got = read(status_fd, buffer, sizeof buffer);
      if (got > 0) {
        scan_status(&scan, buffer, (size_t)got);
        if (relay && write(KEEP_STATUS, buffer, (size_t)got) < 0) relay = 0;
      } else if (got == 0 || errno != EINTR) {
        close(status_fd);
        status_fd = -1;
      }
    }
    if (fds[2].revents) {
      char message[256];
      ssize_t got = read(block_fd, message, sizeof message);
      if (got < 0 && errno == EINTR) continue;
      /* troupe's own sandbox takes more after "go" (a restart, the next "go"): passed on while the spawner is there. */
      int more = got > 0 && k->box && release_fd >= 0;
      if (!more) {
        close(block_fd);
        block_fd = -1;
      }
      if (got > 0) {
        if (memmem(message, (size_t)got, "go", 2)) released = 1, scan.stopped = 0;
        if (release_fd >= 0 && write(release_fd, message, (size_t)got) < 0) { /* the task is already gone */
        }
        if (!more && release_fd >= 0) close(release_fd);
        if (!more) release_fd = -1;
      } else if (released && release_fd >= 0) {
        /* The spawner went away after "go": the command runs to its end (a sandbox waiting for its next "go" ends). */
        close(release_fd);
        release_fd = -1;
      } else if (!ended) {
        /* troupe went away before the group was released: the command must never start. */
        if (k->box) kill(task, SIGKILL);
        else {
          kill(task, SIGTERM);
          kill_at = now_ms() + STOP_GRACE_MS;
        }
      }
    }
    if (fds[3].revents) {
      ssize_t got = read(control, buffer, sizeof buffer - 1);
      if (got > 0) {
        buffer[got] = '\0';
        for (char *line = strtok(buffer, "\n"); line; line = strtok(NULL, "\n")) {
          int signo = atoi(line);
          if (signo > 0 && signo < 65) kill(task, signo);
        }
      }
    }
    if (fds[0].revents) {
      struct signalfd_siginfo info;
      while (read(signals, &info, sizeof info) == sizeof info) {
        if ((int)info.ssi_signo != SIGCHLD) {
          if (!ended) kill(task, (int)info.ssi_signo);
          continue;
        }
        int status;
        if (!ended && waitpid(task, &status, WNOHANG) == task) {
          ended = 1;
          wait_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          drain_until = now_ms() + DRAIN_MS;
          if (release_fd >= 0) close(release_fd);
          release_fd = -1;
        }
      }
    }
  }
  int code = scan.seen ? scan.code : wait_code;
  /* Stopped for a restart and never released again: its command did not end, it was not let start. */
  write_exit(k->state_dir, code, released && !scan.stopped);
  unlink(control_path);
  _exit(code & 0xff);
}
