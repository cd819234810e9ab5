/*
 * troupe-slurm-helper's member: its host sandbox as troupe computed it
 * (node-sandbox.ts), started at the launch, detached in a session of its own:
 * bwrap's command line, or as root troupe's own sandbox's directives, built
 * here by sandbox.c (`ownSandbox`: no bwrap or setpriv process). Its JSON
 * status channel is fd 3 ("child-pid", the sandbox's PID 1, from bwrap once
 * it is set up; "exit-code", the command's, from either) and the barrier fd 4;
 * its output is appended to the member's log, or goes through the helper's
 * masker when the launch has secrets. Ready once the sandbox's PID 1 is known
 * (bwrap names it; troupe's own is the process cloned here, which sets itself
 * up before it waits at the barrier); "go" writes the barrier. The exit status goes to the
 * member's `exit` file (tmp + rename) before it is said. A stop is SIGTERM
 * to the command (the PID 1's child), SIGKILL to the sandbox's PID 1 (its
 * whole PID namespace) after the grace, and to bwrap itself 2 s later; at the
 * barrier, SIGKILL at once. Slurm signals every process of a job it ends
 * (scancel, preemption's grace, a time limit): the command's end is then
 * Slurm's doing, marked in the `signalled` file, and how the job ended is
 * Slurm's to say. The same decisions as member-helper.mjs, in the same order.
 */
#define _GNU_SOURCE
#include "slurm-helper.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How long a sandbox whose PID 1 was killed may take to end before bwrap itself is killed. */
enum { KILL_CONFIRM_MS = 2000, SLURM_SIGNAL_WAIT_MS = 500 };
/* Where the sandbox's fds are kept here: above 0-4, which dup2 gives the sandbox. */
enum { HIGH_FD = 10 };

static int high(int fd) {
  if (fd < 0 || fd >= HIGH_FD) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);
  close(fd);
  return moved;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void mkdirs(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
    *slash = 0;
    mkdir(path, 0777);
    *slash = '/';
  }
  mkdir(path, 0777);
}

static const char *log_path(void) { return json_string_value(json_object_get(H.launch, "logPath")); }

/* The last line of the member's log: bwrap's complaint when the command never ran (NULL: none). */
static char *last_log_line(void) {
  static char tail[2001];
  int fd = open(log_path(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  ssize_t n = 0;
  if (fstat(fd, &st) == 0) {
    off_t size = st.st_size < 2000 ? st.st_size : 2000;
    n = pread(fd, tail, (size_t)size, st.st_size - size);
  }
  close(fd);
  if (n <= 0) return NULL;
  tail[n] = 0;
  while (n > 0 && strchr(" \t\r\n", tail[n - 1])) tail[--n] = 0;
  char *line = strrchr(tail, '\n');
  line = line ? line + 1 : tail;
  while (*line && strchr(" \t\r", *line)) line++;
  return *line ? line : NULL;
}

static char *setup_failure(void) {
  char *message, *line = last_log_line();
  if (line) {
    if (asprintf(&message, "sandbox setup failed on node %s: %s", node_name(), line) < 0) abort();
  } else if (asprintf(&message, "the sandbox ended before its command started on node %s", node_name()) < 0) {
    abort();
  }
  return message;
}

static void signal_pid(pid_t pid, int sig) {
  if (pid > 0) kill(pid, sig); /* ESRCH: gone already */
}

static void say_signalled(int status) {
  char text[32] = "\n";
  if (status >= 0) snprintf(text, sizeof text, "%d\n", status);
  mark("signalled", text);
  json_t *message = json_pack("{s:s}", "t", "signalled");
  if (status >= 0) json_object_set_new(message, "code", json_integer(status));
  send_message(message);
  end_helper();
}

/* Slurm signalled the step: said first (srun may return to the batch script before this helper ends). */
static bool slurm_signalled(void) {
  if (H.signalled_by_slurm) return false;
  H.signalled_by_slurm = true;
  mark("signalled", "\n");
  return true;
}

static void finish(int status, const char *error, bool waited) {
  if (H.exit_status >= 0) return;
  /* A command ended by SIGTERM that troupe did not ask for: most likely Slurm's, whose signal to this helper may
   * come a moment after the command's end. Waited for, briefly, before the end is taken as the command's own. */
  if (status == 128 + SIGTERM && !H.stop_asked && !H.signalled_by_slurm && !waited) {
    H.pending_status = status;
    H.pending_error = error ? strdup(error) : NULL;
    return set_timer(TIMER_FINISH, SLURM_SIGNAL_WAIT_MS);
  }
  H.exit_status = status;
  if (H.signalled_by_slurm) return say_signalled(status);
  char tmp[4096], path[4096], text[32];
  snprintf(tmp, sizeof tmp, "%s/exit.tmp", H.dir);
  snprintf(path, sizeof path, "%s/exit", H.dir);
  snprintf(text, sizeof text, "%d\n", status);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd >= 0) {
    ssize_t written = write(fd, text, strlen(text));
    close(fd);
    if (written == (ssize_t)strlen(text)) rename(tmp, path);
  }
  if (error) send_message(json_pack("{s:s, s:s}", "t", "failed", "message", error));
  else send_message(json_pack("{s:s, s:i}", "t", "exit", "code", status));
  end_helper();
}

void finish_waited(void) { finish(H.pending_status, H.pending_error, true); }

/* How the sandbox ended (bwrap's exit code, 128 + N for a signal N) and what it means. */
static void sandbox_ended(int code) {
  if (H.signalled_by_slurm && !H.released) return say_signalled(-1);
  if (!H.released) {
    if (!H.killed) return fail(setup_failure());
    send_message(json_pack("{s:s}", "t", "stopped"));
    return end_helper();
  }
  /* Killed with its sandbox (a forced stop): its PID 1 had no time to report the command's end. */
  if (H.command_exit < 0 && H.killed) return finish(128 + SIGKILL, NULL, false);
  if (H.command_exit < 0) return finish(code, setup_failure(), false);
  finish(H.command_exit, NULL, false);
}

/* Once bwrap has ended and its status channel and output are closed (the rest of the output is in the log). */
void sandbox_maybe_ended(void) {
  static bool seen;
  if (seen || !H.sandbox_reaped || H.status_fd >= 0 || H.out_fd >= 0 || H.err_fd >= 0) return;
  seen = true;
  if (H.masker) {
    char *rest;
    size_t len;
    masker_end(H.masker, &rest, &len);
    if (len > 0 && write(H.log_fd, rest, len) < 0) { /* the log's file system: nothing to say it to */
    }
    free(rest);
    close_fd(&H.log_fd);
  }
  close_fd(&H.block_fd);
  int status = H.sandbox_status;
  /* troupe only ever SIGKILLs a sandbox: a SIGTERM is Slurm's, which may reach bwrap before this helper hears of it. */
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) slurm_signalled();
  sandbox_ended(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

void sandbox_reap(void) {
  int status;
  for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;)
    if (pid == H.sandbox) {
      H.sandbox_reaped = true;
      H.sandbox_status = status;
    }
  sandbox_maybe_ended();
}

/* The sandbox's PID 1 is known: its command waits at the barrier (its own setup first, in troupe's own sandbox). */
static void sandbox_up(pid_t pid) {
  H.sandbox_pid = pid;
  if (H.killed) return signal_pid(H.sandbox_pid, SIGKILL);
  send_message(json_pack("{s:s}", "t", "ready"));
  /* A group of one (the launch's releaseWhenReady): its command starts now; troupe's "go" then changes nothing. */
  if (json_is_true(json_object_get(H.launch, "releaseWhenReady"))) release_command();
}

/* The status channel (bwrap's, or troupe's own sandbox's PID 1's): the sandbox's PID 1, the command's exit code. */
static void status(const char *line) {
  json_t *message = json_loads(line, 0, NULL);
  json_t *child = json_object_get(message, "child-pid"), *exit_code = json_object_get(message, "exit-code");
  if (json_is_integer(child) && H.sandbox_pid == 0) sandbox_up((pid_t)json_integer_value(child));
  if (json_is_integer(exit_code)) H.command_exit = (int)json_integer_value(exit_code);
  json_decref(message);
}

void sandbox_readable(int fd) {
  char chunk[65536];
  ssize_t n = read(fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    if (fd == H.status_fd) close_fd(&H.status_fd);
    else if (fd == H.out_fd) close_fd(&H.out_fd);
    else close_fd(&H.err_fd);
    return sandbox_maybe_ended();
  }
  if (fd != H.status_fd) {
    char *masked;
    size_t len;
    masker_push(H.masker, chunk, (size_t)n, &masked, &len);
    if (len > 0 && write(H.log_fd, masked, len) < 0) { /* as in sandbox_maybe_ended */
    }
    free(masked);
    return;
  }
  if (H.status_len + (size_t)n + 1 > H.status_cap) {
    H.status_cap = (H.status_len + (size_t)n + 1) * 2;
    H.status_buf = realloc(H.status_buf, H.status_cap);
    if (!H.status_buf) abort();
  }
  memcpy(H.status_buf + H.status_len, chunk, (size_t)n);
  H.status_len += (size_t)n;
  char *start = H.status_buf, *newline;
  while ((newline = memchr(start, '\n', H.status_len - (size_t)(start - H.status_buf)))) {
    *newline = 0;
    if (newline > start) status(start);
    start = newline + 1;
  }
  H.status_len -= (size_t)(start - H.status_buf);
  memmove(H.status_buf, start, H.status_len);
}

/* The sandbox's command line from the launch, NULL-terminated (NULL: not a list of strings). */
static char **sandbox_argv(size_t *count) {
  json_t *list = json_object_get(H.launch, "sandbox");
  *count = json_array_size(list);
  if (*count == 0) return NULL;
  char **argv = calloc(*count + 1, sizeof *argv);
  for (size_t i = 0; i < *count; i++)
    if (!(argv[i] = (char *)json_string_value(json_array_get(list, i)))) return NULL;
  return argv;
}

/*
 * troupe's own sandbox (sandbox.c, as the host runtime's troupe-spawner builds it as root), from the launch's
 * directives: no bwrap and no setpriv, whose starts were most of a member's CPU on its node. Its PID 1 is the
 * process cloned here, in a session of its own, which dies with this helper; fds 0-4 as bwrap's. In the child,
 * never returns; in this helper, the PID (or -1 with errno).
 */
static pid_t start_own_sandbox(sandbox_t *box, const int fds[5]) {
  sandbox_remember_spawner();
  pid_t pid = sandbox_clone(box, 0);
  if (pid != 0) return pid;
  sandbox_die_with_spawner();
  setsid();
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  int moved[5];
  for (int i = 0; i < 5; i++) moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, HIGH_FD);
  for (int i = 0; i < 5; i++)
    if (moved[i] < 0 || dup2(moved[i], i) < 0) _exit(127);
  /* PID 1 never execs: nothing of this helper's (its connection to troupe) may live on in the sandbox. */
  close_other_fds(5);
  sandbox_init(box);
}

/* The launch's secrets, masked in the output (NULL when it has none). */
static struct masker *launch_masker(void) {
  json_t *secrets = json_object_get(H.launch, "secrets");
  size_t count = json_array_size(secrets);
  if (count == 0) return NULL;
  const char **values = calloc(count, sizeof *values);
  size_t n = 0;
  for (size_t i = 0; i < count; i++)
    if (json_is_string(json_array_get(secrets, i))) values[n++] = json_string_value(json_array_get(secrets, i));
  struct masker *masker = masker_new(values, n);
  free(values);
  return masker;
}

static int spawn_bwrap(char **argv, int output, const int status_pipe[2], const int block_pipe[2], const int out_pipe[2], const int err_pipe[2]);

void prepare(json_t *launch) {
  if (H.launch) return say_state();
  H.launch = json_incref(launch);
  const char *path = log_path();
  size_t count;
  char **argv = sandbox_argv(&count);
  /* As root, the launch may be troupe's own sandbox's directives instead of bwrap's command line. */
  bool own = json_is_true(json_object_get(launch, "ownSandbox"));
  static sandbox_t box;
  const char *invalid = own && argv ? sandbox_parse(&box, (const char **)argv, count) : NULL;
  if (invalid) return fail(invalid);
  if (json_object_get(launch, "container") || !argv || !path)
    return fail("troupe-slurm-helper runs members in troupe's host sandbox: its launch names no sandbox (a container's helper is member-helper.mjs)");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) *slash = 0, mkdirs(dir);
  int output = high(open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666));
  if (output < 0) {
    char *message;
    if (asprintf(&message, "cannot open its log %s: %s: %s", path, strerrorname_np(errno), strerror(errno)) < 0) abort();
    return fail(message);
  }
  /* With secrets to mask (the task's credentials'), its output comes through this helper to the log. */
  H.masker = launch_masker();
  int status_pipe[2], block_pipe[2], out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (pipe2(status_pipe, O_CLOEXEC) != 0 || pipe2(block_pipe, O_CLOEXEC) != 0 ||
      (H.masker && (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)))
    return fail("cannot make the sandbox's pipes");
  for (int i = 0; i < 2; i++) {
    status_pipe[i] = high(status_pipe[i]);
    block_pipe[i] = high(block_pipe[i]);
    out_pipe[i] = high(out_pipe[i]);
    err_pipe[i] = high(err_pipe[i]);
  }
  int error = 0;
  if (own) {
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fds[5] = {devnull, H.masker ? out_pipe[1] : output, H.masker ? err_pipe[1] : output, status_pipe[1], block_pipe[0]};
    H.sandbox = devnull < 0 ? -1 : start_own_sandbox(&box, fds);
    if (H.sandbox < 0) error = errno, H.sandbox = 0;
    if (devnull >= 0) close(devnull);
  } else {
    error = spawn_bwrap(argv, output, status_pipe, block_pipe, out_pipe, err_pipe);
  }
  close(status_pipe[1]);
  close(block_pipe[0]);
  if (out_pipe[1] >= 0) close(out_pipe[1]), close(err_pipe[1]);
  if (H.masker) H.log_fd = output;
  else close(output);
  H.status_fd = status_pipe[0];
  H.block_fd = block_pipe[1];
  H.out_fd = out_pipe[0];
  H.err_fd = err_pipe[0];
  const char *program = own ? "troupe's sandbox" : argv[0];
  free(argv);
  if (error != 0) {
    if (own) {
      if (asprintf(&H.start_error, "cannot create the sandbox's namespaces on node %s: %s", node_name(), strerror(error)) < 0) abort();
    } else if (asprintf(&H.start_error, "cannot start %s on node %s: spawn %s %s%s", program, node_name(), program, strerrorname_np(error),
                        error == ENOENT ? " (troupe runs Slurm tasks in bubblewrap on their nodes: install it there, apt-get install bubblewrap)"
                                        : "") < 0) {
      abort();
    }
    return fail(H.start_error);
  }
  /* bwrap says its PID 1 on the status channel; here it is the process just cloned. */
  if (own) sandbox_up(H.sandbox);
}

/* bwrap, detached in a session of its own; 0 or the error of its spawn. */
static int spawn_bwrap(char **argv, int output, const int status_pipe[2], const int block_pipe[2], const int out_pipe[2], const int err_pipe[2]) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, H.masker ? out_pipe[1] : output, 1);
  posix_spawn_file_actions_adddup2(&actions, H.masker ? err_pipe[1] : output, 2);
  posix_spawn_file_actions_adddup2(&actions, status_pipe[1], 3);
  posix_spawn_file_actions_adddup2(&actions, block_pipe[0], 4);
  /* Detached in a session of its own (Node's `detached`), with the signals this helper blocks or ignores as they were. */
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int error = posix_spawnp(&H.sandbox, argv[0], &actions, &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) H.sandbox = 0;
  return error;
}

void release_command(void) {
  if (!H.launch || H.released || H.exit_status >= 0 || H.sandbox_pid == 0) return;
  H.released = true;
  /* When the command starts, by this node's clock (the record's start time, and the group's start skew). */
  int64_t at = wall_ms();
  if (write(H.block_fd, "go", 2) < 0) { /* EPIPE as the sandbox ends: its end says how */
  }
  close_fd(&H.block_fd);
  send_message(json_pack("{s:s, s:I}", "t", "started", "at", (json_int_t)at));
}

/* The command: the sandbox's PID 1's child (0: none, or the sandbox has ended). */
static pid_t command_pid(void) {
  if (H.sandbox_pid == 0) return 0;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", H.sandbox_pid, H.sandbox_pid);
  FILE *file = fopen(path, "re");
  if (!file) return 0;
  long first = 0;
  if (fscanf(file, "%ld", &first) != 1) first = 0;
  fclose(file);
  return first > 0 ? (pid_t)first : 0;
}

/* SIGKILL to the sandbox's PID 1 ends every process of its PID namespace; bwrap then reports its end. */
void kill_sandbox(void) {
  H.killed = true;
  /* Not set up yet: bwrap itself (its child dies with it, --die-with-parent). */
  if (!H.sandbox_reaped) signal_pid(H.sandbox_pid ? H.sandbox_pid : H.sandbox, SIGKILL);
  set_timer(TIMER_CONFIRM, KILL_CONFIRM_MS);
}

void confirm_kill(void) {
  if (!H.sandbox_reaped) signal_pid(H.sandbox, SIGKILL);
}

void stop_member(int64_t grace_ms) {
  H.stop_asked = true;
  if (H.exit_status >= 0) return;
  if (!H.sandbox) {
    send_message(json_pack("{s:s}", "t", "stopped"));
    return end_helper();
  }
  /* The polite signal to the command itself (as a container's PID 1 passes it on); the forced one to its sandbox. */
  pid_t command = H.released ? command_pid() : 0;
  if (grace_ms > 0 && command > 0) {
    signal_pid(command, SIGTERM);
    set_timer(TIMER_GRACE, grace_ms);
  } else {
    kill_sandbox();
  }
}

void slurm_sigterm(void) {
  if (!slurm_signalled()) return;
  if (!H.sandbox || H.exit_status >= 0) return say_signalled(-1);
  if (!H.released) return kill_sandbox();
  /* The command has it from Slurm too; its sandbox's end (sandbox_ended, finish) says the rest. */
  signal_pid(command_pid(), SIGTERM);
}
