/*
 * troupe-spawner: starts the host runtime's task sandboxes (bwrap) for troupe.
 *
 * Why it exists: Node's child_process.spawn forks the whole Node process,
 * about 2 ms of troupe's main thread per task, most of troupe's per-task cost.
 * This small process forks instead (about 0.1 ms), writes task output to the
 * log files itself, and tells troupe what happened over one pipe.
 *
 * Protocol, both ways: frames of a 4-byte little-endian payload length and a
 * payload `op NUL id NUL rest`. Requests on stdin:
 *   spawn   id  rest = mode NUL logpath NUL argv0 NUL argv1 NUL ...
 *           mode "file": stdout+stderr go straight to the log file;
 *           mode "pipe": they come back as `output` events (and go to the log).
 *           mode "relay": they come back as `output` events only: troupe
 *           writes the log itself (it masks secrets in it first); logpath is
 *           still given, and ignored.
 *           The command gets fd 3 (a pipe whose data come back as `status`
 *           events: bwrap's --json-status-fd) and fd 4 (a pipe closed by
 *           `release`: bwrap's --block-fd).
 *   spawn-supervised id  rest as for spawn (not "keep"): bwrap that starts
 *           `troupe-spawner supervise -- COMMAND` (below) as the sandbox's
 *           PID 1. fd 5 is fd 3's pipe too (bwrap's --json-status-fd, which
 *           bwrap keeps from its child), so that PID 1 can say on fd 3 what
 *           troupe's own sandbox's says; fd 4 is its barrier, open after
 *           `release` for a restart.
 *   sandbox id  rest = mode NUL logpath NUL directive... NUL "--" NUL argv...
 *           as root: troupe's own sandbox (sandbox.c), the same namespaces and
 *           mounts as bwrap in a fraction of its cost; the same fds 3 and 4 and
 *           the same status lines as bwrap's ({"child-pid": N}, {"exit-code": N}).
 *           Where it can, copied from a template mount namespace that holds
 *           what every task's sandbox mounts alike (sandbox-template.c).
 *   Mode "keep" (either op): rest = "keep" NUL logpath NUL statedir NUL ...:
 *           the task outlives troupe under a keeper process of its own
 *           (keeper.c), which writes its exit code to statedir; output goes
 *           to the log file. The keeper relays fds 3 and 4, so troupe sees the
 *           same events; `started` carries the keeper's pid.
 *   release id  writes "go" to fd 4 and closes it; troupe's own sandbox's (kept
 *           or not) stays open for a restart. It may follow its start in the
 *           same write (a group of one, started released): the "go" then waits
 *           in the barrier's pipe until the sandbox is up.
 *   restart id  rest = grace in ms: troupe's own sandbox stops its command
 *           for a restart in place (sandbox.c), says {"stopped": N} on fd 3
 *           and waits for the next `release`.
 *   signal  id  rest = signo NUL pid: signals pid (0: the spawned process)
 *           only while the spawned process has not been reaped, so a reused
 *           PID is never hit.
 * Events on stdout:
 *   started id rest = pid          failed id rest = message (nothing runs)
 *   status  id rest = raw bytes    output id rest = raw bytes
 *   exited  id rest = code (exit code, or 128 + signal), sent only after every
 *           status and output byte of that process has been sent.
 * The events of one turn of the main loop go out in one write (flush_events).
 * stdin at EOF (troupe ended or closed it): the spawner exits; bwrap's
 * --die-with-parent then ends every sandbox. The spawner itself dies with troupe.
 *
 * `troupe-spawner supervise -- COMMAND...` (started by bwrap --as-pid-1): PID 1
 * of a bubblewrap sandbox, as troupe's own sandbox's is (sandbox.c): the
 * barrier's "go" and "restart", the command's end, in bwrap's environment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keeper.h"
#include "sandbox.h"
#include "sandbox-template.h"

#define CHUNK 65536
#define MAX_FRAME (64u * 1024u * 1024u)

typedef struct {
  char *id;
  pid_t pid;
  int reaped;
  int code;
  int status_fd; /* read end of the child's fd 3, -1 at EOF */
  int block_fd;  /* write end of the child's fd 4, -1 once released (unless restartable) */
  int restartable; /* troupe's own sandbox (kept or not): its barrier takes "restart" after "go" */
  int output_fd; /* pipe mode: read end of stdout+stderr, else -1 */
  int log_fd;    /* pipe mode: where output is written, else -1 */
  int log_error_told;
  template_use_t *template_use; /* its mount points in a sandbox template's hidden directories */
} child_t;

static child_t **children;
static size_t child_count, child_cap;
static char chunk[CHUNK];

static void die(const char *what) {
  fprintf(stderr, "troupe-spawner: %s: %s\n", what, strerror(errno));
  exit(70);
}

static void write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (fd == STDOUT_FILENO) exit(0); /* troupe is gone */
      return;
    }
    data += n;
    len -= (size_t)n;
  }
}

/*
 * Events wait in `outbox` and go out together once per turn of the main loop
 * (flush_events): one write for the burst of a turn (a start's `started` and
 * status, an end's last status and `exited`) instead of four per event, and so
 * fewer wake-ups of troupe's event loop. Children never flush it: they exec or
 * _exit without returning to the loop.
 */
static char *outbox;
static size_t outbox_len, outbox_cap;
#define OUTBOX_FLUSH_AT (1u << 20)

static void flush_events(void) {
  if (outbox_len == 0) return;
  write_all(STDOUT_FILENO, outbox, outbox_len);
  outbox_len = 0;
}

static void outbox_append(const void *data, size_t len) {
  if (outbox_len + len > outbox_cap) {
    size_t cap = outbox_cap ? outbox_cap : 65536;
    while (cap < outbox_len + len) cap *= 2;
    char *grown = realloc(outbox, cap);
    if (!grown) die("realloc");
    outbox = grown;
    outbox_cap = cap;
  }
  memcpy(outbox + outbox_len, data, len);
  outbox_len += len;
}

/* One event: op, id, then `rest` as given (raw bytes). */
static void send_event(const char *op, const char *id, const char *rest, size_t rest_len) {
  size_t op_len = strlen(op) + 1, id_len = strlen(id) + 1;
  uint32_t len = (uint32_t)(op_len + id_len + rest_len);
  unsigned char header[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, (len >> 24) & 0xff};
  outbox_append(header, 4);
  outbox_append(op, op_len);
  outbox_append(id, id_len);
  if (rest_len) outbox_append(rest, rest_len);
  /* A task writing much output: what is there goes out now rather than growing without bound. */
  if (outbox_len >= OUTBOX_FLUSH_AT) flush_events();
}

static void send_text(const char *op, const char *id, const char *text) { send_event(op, id, text, strlen(text)); }

static child_t *find_child(const char *id) {
  for (size_t i = 0; i < child_count; i++)
    if (strcmp(children[i]->id, id) == 0) return children[i];
  return NULL;
}

static void remove_child(child_t *c) {
  for (size_t i = 0; i < child_count; i++)
    if (children[i] == c) {
      children[i] = children[--child_count];
      break;
    }
  if (c->block_fd >= 0) close(c->block_fd);
  if (c->log_fd >= 0) close(c->log_fd);
  sandbox_template_release(c->template_use);
  free(c->id);
  free(c);
}

/* `exited` goes out once the process is reaped and its pipes are drained. */
static void finish_if_done(child_t *c) {
  if (!c->reaped || c->status_fd >= 0 || c->output_fd >= 0) return;
  char code[16];
  snprintf(code, sizeof code, "%d", c->code);
  send_text("exited", c->id, code);
  remove_child(c);
}

static void make_parent_dirs(const char *path) {
  char buffer[4096];
  if (strlen(path) >= sizeof buffer) return;
  strcpy(buffer, path);
  for (char *p = buffer + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(buffer, 0755);
    *p = '/';
  }
}

/* The pipes of one process: status (its fd 3), barrier (its fd 4), output (pipe mode). */
typedef struct {
  int log_fd; /* -1 in relay mode */
  int pipe_mode;
  int status[2], block[2], output[2];
  int devnull;
} plumbing_t;

/* pipe_mode: 0 file, 1 pipe, 2 relay (output events only, no log written here). */
static int open_plumbing(const char *id, int pipe_mode, const char *log_path, plumbing_t *p) {
  p->pipe_mode = pipe_mode;
  p->log_fd = pipe_mode == 2 ? -1 : open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (p->log_fd < 0 && pipe_mode != 2 && errno == ENOENT) {
    /* The first task of its group: its log directory is made here, not by troupe's event loop. */
    make_parent_dirs(log_path);
    p->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  if (p->log_fd < 0 && pipe_mode != 2) {
    char message[4200];
    snprintf(message, sizeof message, "cannot open the log %s: %s", log_path, strerror(errno));
    send_text("failed", id, message);
    return -1;
  }
  p->output[0] = p->output[1] = -1;
  if (pipe2(p->status, O_CLOEXEC) || pipe2(p->block, O_CLOEXEC) || (pipe_mode && pipe2(p->output, O_CLOEXEC))) die("pipe2");
  p->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (p->devnull < 0) die("open /dev/null");
  return 0;
}

/* In the child: fds 0-4 as the protocol says, `extra` (unless -1) as fd 5, nothing else open. */
static void child_fds(plumbing_t *p, int close_rest, int extra) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  int out = p->pipe_mode ? p->output[1] : p->log_fd;
  int wanted[6] = {p->devnull, out, out, p->status[1], p->block[0], extra};
  int count = extra >= 0 ? 6 : 5;
  int moved[6];
  for (int i = 0; i < count; i++) moved[i] = fcntl(wanted[i], F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < count; i++)
    if (moved[i] < 0 || dup2(moved[i], i) < 0) _exit(127);
  /* Other tasks' pipes must not live on in this one (CLOEXEC alone would not do for a sandbox's PID 1, which never execs). */
  for (int i = 0; i < count; i++) close(moved[i]);
  if (close_rest) close_other_fds(count);
}

/* In troupe's process, after the fork: keep our ends, remember the child. */
static child_t *adopt(const char *id, pid_t pid, plumbing_t *p) {
  close(p->devnull);
  close(p->status[1]);
  close(p->block[0]);
  if (p->pipe_mode) close(p->output[1]);
  child_t *c = calloc(1, sizeof *c);
  if (!c) die("calloc");
  c->id = strdup(id);
  c->pid = pid;
  c->status_fd = p->status[0];
  c->block_fd = p->block[1];
  c->output_fd = p->pipe_mode ? p->output[0] : -1;
  c->log_fd = p->pipe_mode ? p->log_fd : -1;
  if (!p->pipe_mode && p->log_fd >= 0) close(p->log_fd);
  if (child_count == child_cap) {
    child_cap = child_cap ? child_cap * 2 : 64;
    children = realloc(children, child_cap * sizeof *children);
    if (!children) die("realloc");
  }
  children[child_count++] = c;
  return c;
}

static void send_started(const char *id, pid_t pid) {
  char pid_text[16];
  snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
  send_text("started", id, pid_text);
}

static int pipe_mode_of(const char *mode) { return strcmp(mode, "pipe") == 0 ? 1 : strcmp(mode, "relay") == 0 ? 2 : 0; }

/* Splits `rest` into NUL-terminated fields; returns how many (at most max). */
/* The fields of a request; (size_t)-1 when there are more than `max` (nothing is cut short silently). */
static size_t split_fields(const char *rest, size_t rest_len, const char **fields, size_t max) {
  size_t count = 0;
  for (size_t at = 0; at < rest_len;) {
    if (count == max) return (size_t)-1;
    fields[count++] = rest + at;
    at += strnlen(rest + at, rest_len - at) + 1;
  }
  return count;
}

#define MAX_FIELDS 65536
static const char *fields[MAX_FIELDS + 1];

/* "keep" mode: fork the task's keeper (keeper.c), which starts the task itself. */
static void spawn_kept(const char *id, const char *log_path, const char *state_dir, sandbox_t *box, char **argv) {
  plumbing_t p;
  if (open_plumbing(id, 0, log_path, &p)) return;
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    keeper_t keeper = {
        .state_dir = state_dir,
        .devnull = p.devnull,
        .log_fd = p.log_fd,
        .status_write = p.status[1],
        .block_read = p.block[0],
        .box = box,
        .argv = argv,
    };
    keeper_main(&keeper);
  }
  /* The keeper passes on what follows "go" to troupe's own sandbox (a restart in place). */
  adopt(id, pid, &p)->restartable = box != NULL;
  send_started(id, pid);
}

static void spawn_child(const char *id, const char *rest, size_t rest_len, int supervised) {
  /* rest: mode, logpath, [statedir,] argv... */
  size_t count = split_fields(rest, rest_len, fields, MAX_FIELDS);
  if (count == (size_t)-1) {
    send_text("failed", id, "too many fields in a spawn request");
    return;
  }
  int keep = count > 0 && strcmp(fields[0], "keep") == 0;
  if (count < 3u + keep) {
    send_text("failed", id, "malformed spawn request");
    return;
  }
  if (keep && !supervised) {
    fields[count] = NULL;
    spawn_kept(id, fields[1], fields[2], NULL, (char **)&fields[3]);
    return;
  }
  if (keep) {
    send_text("failed", id, "a supervised spawn cannot be kept");
    return;
  }
  plumbing_t p;
  if (open_plumbing(id, pipe_mode_of(fields[0]), fields[1], &p)) return;
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC)) die("pipe2");
  fields[count] = NULL;
  char **argv = (char **)&fields[2];

  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int report = fcntl(exec_pipe[1], F_DUPFD_CLOEXEC, 10);
    child_fds(&p, 0, -1);
    if (supervised && dup2(3, 5) < 0) _exit(127);
    execvp(argv[0], argv);
    int error = errno;
    write_all(report, (const char *)&error, sizeof error);
    _exit(127);
  }
  close(exec_pipe[1]);
  child_t *c = adopt(id, pid, &p);
  c->restartable = supervised;

  /* Empty read: exec succeeded (the pipe closed on exec). */
  int exec_error = 0;
  ssize_t n;
  do n = read(exec_pipe[0], &exec_error, sizeof exec_error);
  while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (n > 0) {
    char message[4200];
    snprintf(message, sizeof message, "cannot start %s: %s", argv[0], strerror(exec_error));
    send_text("failed", id, message);
    /* It exits at once; reaping it drops the record without an `exited`. */
    c->id[0] = '\0';
    return;
  }
  send_started(id, pid);
}

static void spawn_sandbox(const char *id, const char *rest, size_t rest_len) {
  size_t count = split_fields(rest, rest_len, fields, MAX_FIELDS);
  if (count == (size_t)-1) {
    send_text("failed", id, "too many fields in a sandbox request");
    return;
  }
  fields[count] = NULL;
  static sandbox_t box;
  int keep = count > 0 && strcmp(fields[0], "keep") == 0;
  size_t first = 2u + keep;
  const char *error = count < first ? "malformed sandbox request" : sandbox_parse(&box, fields + first, count - first);
  if (error) {
    send_text("failed", id, error);
    return;
  }
  if (keep) {
    spawn_kept(id, fields[1], fields[2], &box, NULL);
    return;
  }
  sandbox_template_t *template = sandbox_template_for(&box);
  template_use_t *use = NULL;
  if (template) {
    const char *error;
    use = sandbox_template_use(template, &box, &error);
    if (!use) {
      send_text("failed", id, error);
      return;
    }
  }
  plumbing_t p;
  if (open_plumbing(id, pipe_mode_of(fields[0]), fields[1], &p)) {
    sandbox_template_release(use);
    return;
  }
  pid_t pid = sandbox_clone(&box, template != NULL);
  if (pid < 0) {
    char message[512];
    snprintf(message, sizeof message, "cannot create the sandbox's namespaces: %s", strerror(errno));
    close(p.devnull), close(p.status[0]), close(p.status[1]), close(p.block[0]), close(p.block[1]);
    if (p.log_fd >= 0) close(p.log_fd);
    if (p.pipe_mode) close(p.output[0]), close(p.output[1]);
    sandbox_template_release(use);
    send_text("failed", id, message);
    return;
  }
  if (pid == 0) {
    sandbox_die_with_spawner();
    child_fds(&p, 1, template ? sandbox_template_fd(template) : -1);
    if (template) sandbox_init_from_template(&box, 5);
    sandbox_init(&box); /* never returns */
  }
  child_t *c = adopt(id, pid, &p);
  c->restartable = 1;
  c->template_use = use;
  send_started(id, pid);
  /* As bwrap does: the sandbox's PID 1, whose end ends every process in it. */
  char line[64];
  int len = snprintf(line, sizeof line, "{\"child-pid\": %d}\n", (int)pid);
  send_event("status", id, line, (size_t)len);
}

static void handle_request(const char *frame, size_t len) {
  size_t op_len = strnlen(frame, len);
  if (op_len >= len) return;
  const char *op = frame;
  const char *id = frame + op_len + 1;
  size_t id_len = strnlen(id, len - op_len - 1);
  if (op_len + 1 + id_len >= len) return;
  const char *rest = id + id_len + 1;
  size_t rest_len = len - (op_len + 1 + id_len + 1);

  if (strcmp(op, "spawn") == 0 || strcmp(op, "spawn-supervised") == 0) {
    spawn_child(id, rest, rest_len, op[5] != '\0');
    return;
  }
  if (strcmp(op, "sandbox") == 0) {
    spawn_sandbox(id, rest, rest_len);
    return;
  }
  child_t *c = find_child(id);
  if (!c) return; /* already ended: nothing to do */
  if (strcmp(op, "release") == 0) {
    if (c->block_fd >= 0) {
      write_all(c->block_fd, "go\n", 3);
      if (!c->restartable) {
        close(c->block_fd);
        c->block_fd = -1;
      }
    }
  } else if (strcmp(op, "restart") == 0 && c->restartable && c->block_fd >= 0 && !c->reaped) {
    char message[48];
    int len = snprintf(message, sizeof message, "restart %ld\n", strtol(rest, NULL, 10));
    write_all(c->block_fd, message, (size_t)len);
  } else if (strcmp(op, "signal") == 0 && !c->reaped) {
    int signo = atoi(rest);
    size_t signo_len = strnlen(rest, rest_len);
    pid_t target = signo_len + 1 < rest_len ? (pid_t)atoi(rest + signo_len + 1) : 0;
    kill(target > 0 ? target : c->pid, signo);
  }
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < child_count; i++) {
      child_t *c = children[i];
      if (c->pid != pid) continue;
      c->reaped = 1;
      c->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (c->id[0] == '\0') { /* failed exec, already reported */
        if (c->status_fd >= 0) close(c->status_fd);
        if (c->output_fd >= 0) close(c->output_fd);
        remove_child(c);
      } else {
        finish_if_done(c);
      }
      break;
    }
  }
}

/* Reads what a child's pipe has; returns 0 at EOF. */
static int drain(child_t *c, int fd, int is_output) {
  ssize_t n = read(fd, chunk, sizeof chunk);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return 0;
  if (is_output) {
    ssize_t at = 0;
    while (c->log_fd >= 0 && at < n) {
      ssize_t w = write(c->log_fd, chunk + at, (size_t)(n - at));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        if (!c->log_error_told) fprintf(stderr, "troupe-spawner: cannot write the log of %s: %s\n", c->id, strerror(errno));
        c->log_error_told = 1;
        break;
      }
      at += w;
    }
    send_event("output", c->id, chunk, (size_t)n);
  } else {
    send_event("status", c->id, chunk, (size_t)n);
  }
  return 1;
}

/* PID 1 of a bwrap sandbox (bwrap --as-pid-1): see the top of this file. */
static int supervise(int argc, char **argv) {
  int first = argc > 2 && strcmp(argv[2], "--") == 0 ? 3 : 2;
  if (first >= argc || getpid() != 1) {
    fprintf(stderr, "troupe-spawner supervise: wants a command, as PID 1 of a PID namespace (bwrap --unshare-pid --as-pid-1)\n");
    return 127;
  }
  static sandbox_t box;
  box.argv = argv + first;
  box.inherit_env = 1;
  sandbox_supervise(&box);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "supervise") == 0) return supervise(argc, argv);
  /* Die with troupe. (If troupe is already gone, stdin is at EOF and the loop ends at once.) */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sandbox_remember_spawner();
  sandbox_templates_init();
  signal(SIGPIPE, SIG_IGN);
  /* Up to four pipes per running task: a large group needs more than the usual 1024. */
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");

  size_t in_cap = 1 << 16, in_len = 0;
  char *in = malloc(in_cap);
  struct pollfd *fds = NULL;
  child_t **owners = NULL;
  size_t fds_cap = 0;
  if (!in) die("malloc");

  for (;;) {
    /* What this turn had to say, before waiting for the next. */
    flush_events();
    size_t want = 2 + 2 * child_count;
    if (want > fds_cap) {
      fds_cap = want * 2;
      fds = realloc(fds, fds_cap * sizeof *fds);
      owners = realloc(owners, fds_cap * sizeof *owners);
      if (!fds || !owners) die("realloc");
    }
    size_t nfds = 0;
    fds[nfds++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    fds[nfds++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (size_t i = 0; i < child_count; i++) {
      child_t *c = children[i];
      if (c->status_fd >= 0) owners[nfds] = c, fds[nfds++] = (struct pollfd){.fd = c->status_fd, .events = POLLIN};
      if (c->output_fd >= 0) owners[nfds] = c, fds[nfds++] = (struct pollfd){.fd = c->output_fd, .events = POLLIN};
    }
    if (poll(fds, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    /* Pipes first, so that an `exited` follows every byte of its process. */
    for (size_t i = 2; i < nfds; i++) {
      if (!fds[i].revents) continue;
      child_t *c = owners[i];
      int is_output = fds[i].fd == c->output_fd;
      if (!drain(c, fds[i].fd, is_output)) {
        close(fds[i].fd);
        if (is_output) c->output_fd = -1;
        else c->status_fd = -1;
        finish_if_done(c);
      }
    }
    if (fds[1].revents) {
      struct signalfd_siginfo info;
      while (read(sfd, &info, sizeof info) > 0) {
      }
      reap();
    }
    if (fds[0].revents) {
      if (in_len == in_cap) {
        in_cap *= 2;
        in = realloc(in, in_cap);
        if (!in) die("realloc");
      }
      ssize_t n = read(STDIN_FILENO, in + in_len, in_cap - in_len);
      if (n == 0) return 0;
      if (n < 0) {
        if (errno == EINTR) continue;
        return 0;
      }
      in_len += (size_t)n;
      size_t at = 0;
      while (in_len - at >= 4) {
        const unsigned char *h = (const unsigned char *)in + at;
        uint32_t len = h[0] | (h[1] << 8) | (h[2] << 16) | ((uint32_t)h[3] << 24);
        if (len > MAX_FRAME) {
          fprintf(stderr, "troupe-spawner: request of %u bytes refused\n", len);
          return 70;
        }
        if (in_len - at - 4 < len) {
          if (len + 4 > in_cap) {
            in_cap = len + 4;
            in = realloc(in, in_cap); /* in_len <= old cap, data kept */
            if (!in) die("realloc");
          }
          break;
        }
        handle_request(in + at + 4, len);
        at += 4 + len;
      }
      memmove(in, in + at, in_len - at);
      in_len -= at;
    }
  }
}
