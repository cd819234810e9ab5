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
 * It also tells troupe, through files in the control directory:
 *   ready  written once it runs: "iflink N", the host-side index of its
 *          network interface's peer (so troupe can isolate that bridge port);
 *   oom    written when the command was killed for using too much memory
 *          (the memory cgroup's oom_kill count went up), also said on stderr.
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

static void write_control(const char *name, const char *text) {
  char path[256], partial[256];
  snprintf(path, sizeof path, "%s/%s", CONTROL_DIR, name);
  snprintf(partial, sizeof partial, "%s/.%s", CONTROL_DIR, name);
  FILE *f = fopen(partial, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
  rename(partial, path); /* whole or not at all */
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

static void forward(int signo) {
  if (command > 0) kill(command, signo);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "troupe-init: no command given\n");
    return 127;
  }
  say_ready();
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
  long kills_before = oom_kills();
  for (;;) {
    int status;
    pid_t pid = wait(&status);
    if (pid < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (pid != child) continue; /* an orphan of the task, reaped */
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && kills_before >= 0 && oom_kills() > kills_before) {
      fprintf(stderr, "troupe: the command was killed for using more memory than its limit\n");
      write_control("oom", "oom\n");
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
}
