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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONTROL_DIR "/.troupe/ctl"
#define GO_FILE CONTROL_DIR "/go"

static volatile pid_t command;

static void forward(int signo) {
  if (command > 0) kill(command, signo);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "troupe-init: no command given\n");
    return 127;
  }
  /* Watch first, then look: a release between the two is not missed. */
  int watch = inotify_init1(IN_CLOEXEC);
  if (watch >= 0 && inotify_add_watch(watch, CONTROL_DIR, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    close(watch);
    watch = -1;
  }
  while (access(GO_FILE, F_OK) != 0) {
    if (watch < 0) {
      usleep(2000); /* no inotify: poll */
      continue;
    }
    char events[4096];
    if (read(watch, events, sizeof events) < 0 && errno != EINTR) {
      close(watch);
      watch = -1;
    }
  }
  if (watch >= 0) close(watch);

  int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) signal(forwarded[i], forward);
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "troupe-init: cannot fork: %s\n", strerror(errno));
    return 127;
  }
  if (child == 0) {
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) signal(forwarded[i], SIG_DFL);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "troupe: cannot run %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  command = child;
  for (;;) {
    int status;
    pid_t pid = wait(&status);
    if (pid < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (pid == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    /* else an orphan of the task, reaped */
  }
}
