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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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

/* The release's nonce: the first word of "go", which is removed before the command can see it. */
static void take_nonce(char *nonce, size_t size) {
  nonce[0] = 0;
  int fd = open(GO_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, nonce, size - 1);
    nonce[n > 0 ? n : 0] = 0;
    nonce[strcspn(nonce, " \t\r\n")] = 0;
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
  /* Before anything of the task's can run here: its memory and /proc/1 are not the task's to read. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
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
  char nonce[128];
  take_nonce(nonce, sizeof nonce);

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
    int oom = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && kills_before >= 0 && oom_kills() > kills_before;
    if (oom) fprintf(stderr, "troupe: the command was killed for using more memory than its limit\n");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    command = 0; /* reaped: its pid may be reused */
    /* Nothing of the task may see the verdict (it holds the nonce): kill the rest first. */
    if (kill_the_rest()) {
      char verdict[256];
      snprintf(verdict, sizeof verdict, "verdict %s %d %d\n", nonce, code, oom);
      write_control("verdict", verdict);
    }
    return code;
  }
}
