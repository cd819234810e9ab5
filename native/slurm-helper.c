/*
 * troupe-slurm-helper MEMBERS_FILE: one member of a troupe group on a Slurm
 * node, for members in troupe's host sandbox: the C twin of
 * src/runtime/slurm/member-helper.mjs (which members in podman containers
 * keep), started as a task of the group's one step (batch-script.ts: `srun
 * ... troupe-slurm-helper MEMBERS_FILE`). A static binary: it needs nothing
 * on the node but bwrap, and starts in a millisecond where Node.js takes a
 * third of a second (12 at once on a small node: most of a group's start).
 *
 * Task SLURM_PROCID is member number SLURM_PROCID of the members file (a key
 * and a directory a line). The helper connects to troupe at the address the
 * run's `listener` file names (JSON lines, helper-listener.ts is troupe's
 * side), says hello (the run's token, its key, its node, job, whether its
 * command runs, Slurm's GPU variables) and waits for its launch: bwrap's
 * command line (node-sandbox.ts), started at once (slurm-helper-sandbox.c).
 * A broken connection (troupe restarted) is tried again every 500 ms, at
 * whatever address the listener file names then; a run that does not keep its
 * tasks ends its command once troupe has been gone for the launch's orphanMs.
 * This file: the connection, the protocol and the event loop.
 */
#define _GNU_SOURCE
#include "slurm-helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct helper H;

/* How long to wait before connecting again (as the Node helper). */
enum { RECONNECT_MS = 500, DEFAULT_ORPHAN_MS = 30000, DEFAULT_GRACE_MS = 5000 };

/* Slurm's variables for the task's GPUs (as it set them for this task), which troupe passes into the sandbox. */
static const char *const GPU_VARIABLES[] = {
    "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS",
};

static int64_t clock_ms(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
int64_t monotonic_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

void set_timer(enum helper_timer timer, int64_t in_ms) { H.timers[timer] = monotonic_ms() + (in_ms > 0 ? in_ms : 0); }

const char *node_name(void) {
  static char name[256];
  if (!name[0] && gethostname(name, sizeof name - 1) != 0) strcpy(name, "?");
  return name;
}

void mark(const char *name, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", H.dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return; /* the run's directory is gone already (troupe closed the run): nobody waits for it */
  if (write(fd, text, strlen(text)) < 0) { /* as above */
  }
  close(fd);
}

/* Every way out: the batch script waits for each member's helper to have left (or been signalled). */
static void __attribute__((noreturn)) leave(int code) {
  mark("left", "");
  exit(code);
}

static void write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, 1000);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return; /* broken: its reading end says so */
    }
  }
}

void send_message(json_t *message) {
  if (H.connected) {
    char *line = json_dumps(message, JSON_COMPACT);
    if (line) {
      size_t len = strlen(line);
      line = realloc(line, len + 2);
      line[len] = '\n';
      write_all(H.sock, line, len + 1);
      free(line);
    }
  }
  json_decref(message);
}

void say_state(void) {
  if (H.exit_status >= 0)
    send_message(json_pack("{s:s, s:i}", "t", "exit", "code", H.exit_status));
  else if (H.released)
    send_message(json_pack("{s:s, s:b}", "t", "started", "again", 1));
  else if (H.sandbox_pid > 0)
    send_message(json_pack("{s:s}", "t", "ready"));
}

void fail(const char *message) {
  send_message(json_pack("{s:s, s:s}", "t", "failed", "message", message));
  end_helper();
}

/* Leaves once what it said is sent (its step then ends with it). */
void end_helper(void) {
  if (H.sock >= 0) {
    char discard[4096];
    while (recv(H.sock, discard, sizeof discard, MSG_DONTWAIT) > 0) { /* unread lines would make close() a reset */
    }
    shutdown(H.sock, SHUT_WR);
    close(H.sock);
  }
  leave(0);
}

static void hello(void) {
  json_t *gpu_env = json_object();
  for (size_t i = 0; i < sizeof GPU_VARIABLES / sizeof *GPU_VARIABLES; i++) {
    const char *value = getenv(GPU_VARIABLES[i]);
    if (value) json_object_set_new(gpu_env, GPU_VARIABLES[i], json_string(value));
  }
  send_message(json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "t", "hello", "token", H.token, "key", H.key, "node", node_name(), "job",
                         H.job, "running", H.released, "gpuEnv", gpu_env));
}

static int64_t launch_ms(const char *field, int64_t otherwise) {
  json_t *value = H.launch ? json_object_get(H.launch, field) : NULL;
  return json_is_number(value) ? (int64_t)json_number_value(value) : otherwise;
}

/* The connection broke (or never came): troupe may come back at a new address. */
static void disconnected(void) {
  close(H.sock);
  H.sock = -1;
  H.connected = false;
  H.in_len = 0;
  if (H.exit_status >= 0) leave(0);
  if (!H.keep && !H.timers[TIMER_ORPHAN]) set_timer(TIMER_ORPHAN, launch_ms("orphanMs", DEFAULT_ORPHAN_MS));
  set_timer(TIMER_RECONNECT, RECONNECT_MS);
}

/* Reads the address in the listener file and starts connecting (done in the loop once writable). */
static void connect_listener(void) {
  char path[4096], address[256];
  snprintf(path, sizeof path, "%s/listener", H.run_dir);
  FILE *file = fopen(path, "re");
  size_t n = file ? fread(address, 1, sizeof address - 1, file) : 0;
  if (file) fclose(file);
  address[n] = 0;
  while (n > 0 && (address[n - 1] == '\n' || address[n - 1] == ' ')) address[--n] = 0;
  char *colon = strrchr(address, ':');
  if (!colon) return set_timer(TIMER_RECONNECT, RECONNECT_MS);
  *colon = 0;
  int port = atoi(colon + 1);
  struct sockaddr_storage to = {0};
  socklen_t to_len;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&to;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;
  if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    to_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    to_len = sizeof *v6;
  } else {
    fprintf(stderr, "troupe-slurm-helper: the listener file says %s, not an address:port\n", address);
    return set_timer(TIMER_RECONNECT, RECONNECT_MS);
  }
  H.sock = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (H.sock < 0) return set_timer(TIMER_RECONNECT, RECONNECT_MS);
  if (connect(H.sock, (struct sockaddr *)&to, to_len) != 0 && errno != EINPROGRESS) disconnected();
}

static void connected(void) {
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(H.sock, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) return disconnected();
  int on = 1;
  setsockopt(H.sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  H.connected = true;
  H.timers[TIMER_ORPHAN] = 0;
  hello();
  say_state();
}

static void handle(json_t *message) {
  const char *t = json_string_value(json_object_get(message, "t"));
  if (!t) return;
  if (strcmp(t, "launch") == 0) {
    json_t *launch = json_object_get(message, "launch");
    if (json_is_object(launch)) prepare(launch);
  } else if (strcmp(t, "go") == 0) {
    release_command();
  } else if (strcmp(t, "stop") == 0) {
    json_t *grace = json_object_get(message, "graceMs");
    stop_member(json_is_number(grace) ? (int64_t)json_number_value(grace) : 0);
  }
  /* "restart" and "restarted" are a container's (troupe-init's restart in place): never a sandbox's. */
}

static void readable(void) {
  if (H.in_cap - H.in_len < 4096) {
    H.in_cap = H.in_cap * 2 + 8192;
    H.in = realloc(H.in, H.in_cap);
    if (!H.in) abort();
  }
  ssize_t n = recv(H.sock, H.in + H.in_len, H.in_cap - H.in_len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) return disconnected();
  H.in_len += (size_t)n;
  char *start = H.in, *newline;
  int sock = H.sock;
  while (H.sock == sock && (newline = memchr(start, '\n', H.in_len - (size_t)(start - H.in)))) {
    *newline = 0;
    json_t *message = newline > start ? json_loads(start, JSON_REJECT_DUPLICATES, NULL) : NULL;
    start = newline + 1;
    if (message) handle(message);
    json_decref(message);
  }
  if (H.sock != sock) return; /* the connection went while handling */
  H.in_len -= (size_t)(start - H.in);
  memmove(H.in, start, H.in_len);
}

static void timer_fired(enum helper_timer timer) {
  H.timers[timer] = 0;
  switch (timer) {
    case TIMER_RECONNECT:
      if (H.sock < 0) connect_listener();
      break;
    case TIMER_ORPHAN:
      if (H.sandbox) stop_member(launch_ms("graceMs", DEFAULT_GRACE_MS));
      else leave(0);
      break;
    case TIMER_GRACE:
      kill_sandbox();
      break;
    case TIMER_CONFIRM:
      confirm_kill();
      break;
    case TIMER_FINISH:
      finish_waited();
      break;
    default:
      break;
  }
}

static char *read_text(const char *path) {
  FILE *file = fopen(path, "re");
  if (!file) return NULL;
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  char chunk[4096];
  for (size_t n; (n = fread(chunk, 1, sizeof chunk, file)) > 0;) fwrite(chunk, 1, n, out);
  fclose(out);
  fclose(file);
  return text;
}

/* The member this task runs (line SLURM_PROCID of the members file), and its run's token and settings. */
static void read_member(const char *members_file) {
  const char *procid = getenv("SLURM_PROCID");
  long rank = procid ? strtol(procid, NULL, 10) : 0;
  char *members = read_text(members_file);
  if (!members) {
    fprintf(stderr, "troupe-slurm-helper: cannot read the members file %s: %s\n", members_file, strerror(errno));
    exit(1);
  }
  char *line = members;
  for (long i = 0; i < rank && line; i++) line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL;
  char *tab = line ? strchr(line, '\t') : NULL;
  if (!tab) {
    fprintf(stderr, "troupe-slurm-helper: the members file %s has no member %ld (SLURM_PROCID)\n", members_file, rank);
    exit(1);
  }
  *tab = 0;
  char *end = strchr(tab + 1, '\n');
  if (end) *end = 0;
  H.key = line;
  H.dir = tab + 1;
  const char *jobs = strstr(members_file, "/jobs/");
  for (const char *later; jobs && (later = strstr(jobs + 1, "/jobs/"));) jobs = later;
  H.run_dir = strndup(members_file, jobs ? (size_t)(jobs - members_file) : 0);
  char path[4096];
  snprintf(path, sizeof path, "%s/token", H.run_dir);
  H.token = read_text(path);
  if (!H.token) {
    fprintf(stderr, "troupe-slurm-helper: cannot read the run's token %s: %s\n", path, strerror(errno));
    exit(1);
  }
  for (size_t n = strlen(H.token); n > 0 && strchr(" \t\r\n", H.token[n - 1]); n--) H.token[n - 1] = 0;
  snprintf(path, sizeof path, "%s/keep", H.run_dir);
  H.keep = access(path, F_OK) == 0;
  H.job = getenv("SLURM_JOB_ID") ? getenv("SLURM_JOB_ID") : "";
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: troupe-slurm-helper MEMBERS_FILE (a task of a troupe group's Slurm step)\n");
    return 2;
  }
  H.sock = H.status_fd = H.block_fd = H.out_fd = H.err_fd = H.log_fd = -1;
  H.command_exit = H.exit_status = -1;
  read_member(argv[1]);
  signal(SIGPIPE, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGCHLD);
  sigprocmask(SIG_BLOCK, &handled, NULL);
  int signals = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  connect_listener();
  for (;;) {
    int64_t now = monotonic_ms(), next = -1;
    for (int t = 0; t < TIMER_COUNT; t++)
      if (H.timers[t] && (next < 0 || H.timers[t] < next)) next = H.timers[t];
    struct pollfd fds[] = {
        {.fd = signals, .events = POLLIN},
        {.fd = H.sock, .events = H.connected ? POLLIN : POLLOUT},
        {.fd = H.status_fd, .events = POLLIN},
        {.fd = H.out_fd, .events = POLLIN},
        {.fd = H.err_fd, .events = POLLIN},
    };
    int timeout = next < 0 ? -1 : next > now ? (int)(next - now) : 0;
    if (poll(fds, sizeof fds / sizeof *fds, timeout) < 0 && errno != EINTR) return 1;
    now = monotonic_ms();
    for (int t = 0; t < TIMER_COUNT; t++)
      if (H.timers[t] && H.timers[t] <= now) timer_fired((enum helper_timer)t);
    if (fds[0].revents) {
      struct signalfd_siginfo info;
      while (read(signals, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGTERM) slurm_sigterm();
        else sandbox_reap();
      }
    }
    /* Each fd is handled only while it is still the one polled (a handler may have closed it). */
    if (fds[1].revents && fds[1].fd == H.sock && H.sock >= 0) {
      if (!H.connected) connected();
      else readable();
    }
    for (int i = 2; i < 5; i++)
      if (fds[i].revents && fds[i].fd >= 0 && (fds[i].fd == H.status_fd || fds[i].fd == H.out_fd || fds[i].fd == H.err_fd))
        sandbox_readable(fds[i].fd);
  }
}
