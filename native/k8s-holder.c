/*
 * troupe-init's Kubernetes mode (`troupe-init --kubernetes POD_INFO_DIR LAUNCH_DIR`): the barrier's holder for
 * images without a shell. It is what the shell holder and launch.sh of src/runtime/kubernetes/barrier.ts do,
 * with no shell and no tool of the image:
 *   - waits until the pod's annotation `troupe.dev/barrier` reads "released" (a line
 *     `troupe.dev/barrier="released"` of POD_INFO_DIR/annotations, the downward API file the kubelet rewrites)
 *     and the launch is there (LAUNCH_DIR/launch, from the launch Secret the kubelet mounts once it exists);
 *   - reads the launch (its format below; anything else is refused, saying what and where);
 *   - puts each file in place (its directories made, its mode set) from LAUNCH_DIR/KEY;
 *   - execs the command with exactly the launch's environment (its PATH is where the command is looked for,
 *     as `env -i` does), so the command is the container's process and its exit code the container's.
 * While it waits it ends at once on SIGTERM (a pod deleted while held): as PID 1 it would otherwise ignore it
 * and the kubelet would wait the whole grace period.
 *
 * The launch (src/runtime/kubernetes/init-holder.ts writes it): NUL-terminated fields, no escaping needed
 * (no path, variable or argument can hold a NUL):
 *   "troupe-launch 1", then records: "file" KEY PATH MODE (octal) | "env" NAME=VALUE | "arg" WORD, then "end".
 */
#define _GNU_SOURCE
#include "k8s-holder.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define LAUNCH_FILE "launch"
#define ANNOTATIONS_FILE "annotations"
#define RELEASED_LINE "troupe.dev/barrier=\"released\""
#define LAUNCH_HEADER "troupe-launch 1"
/* The exit code when the holder cannot start the command (as a shell's "command not found"). */
#define CANNOT_RUN 127

extern char **environ;

static void holder_signal(int signo) { _exit(128 + signo); }

/* The whole of a file (NUL-terminated too), or NULL; its length in *length. */
static char *read_whole(const char *path, size_t *length) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  char *text = NULL;
  if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  else if ((text = malloc((size_t)st.st_size + 1))) {
    size_t got = 0;
    ssize_t n;
    while (got < (size_t)st.st_size && (n = read(fd, text + got, (size_t)st.st_size - got)) > 0) got += (size_t)n;
    text[got] = 0;
    *length = got;
  }
  close(fd);
  return text;
}

static int is_released(const char *pod_info_dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", pod_info_dir, ANNOTATIONS_FILE);
  size_t length;
  char *text = read_whole(path, &length);
  if (!text) return 0;
  int released = 0;
  for (char *line = text; line && *line && !released; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    size_t n = strcspn(line, "\n");
    released = n == strlen(RELEASED_LINE) && strncmp(line, RELEASED_LINE, n) == 0;
  }
  free(text);
  return released;
}

static int launch_there(const char *launch_dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", launch_dir, LAUNCH_FILE);
  /* There, readable or not: one the image's user cannot read is said so below, not waited on for ever. */
  return access(path, F_OK) == 0;
}

/*
 * Blocks until both are there: inotify on the two directories (the kubelet swaps a `..data` link in each when
 * it updates a volume), and a look every second besides (a directory that appears later, or no inotify).
 */
static void wait_for_release(const char *pod_info_dir, const char *launch_dir) {
  int watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  const char *dirs[2] = {pod_info_dir, launch_dir};
  int watched[2] = {0, 0};
  const uint32_t events = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE;
  for (;;) {
    /* Watch first, then look: a change between the two is not missed. */
    for (int i = 0; i < 2; i++)
      if (watch >= 0 && !watched[i]) watched[i] = inotify_add_watch(watch, dirs[i], events) >= 0;
    if (launch_there(launch_dir) && is_released(pod_info_dir)) break;
    struct pollfd fd = {.fd = watch, .events = POLLIN};
    poll(&fd, 1, 1000);
    char buffer[4096];
    while (watch >= 0 && read(watch, buffer, sizeof buffer) > 0) {
    }
  }
  if (watch >= 0) close(watch);
}

/* The launch, read: its fields in order, or exit with what is wrong and where. */
struct launch {
  char *text;
  size_t length, at;
  const char *path;
};

static void malformed(const struct launch *l, const char *what) {
  fprintf(stderr, "troupe-init: the launch %s is malformed: %s (at byte %zu); not running the command\n", l->path, what,
          l->at);
  exit(CANNOT_RUN);
}

/* The next NUL-terminated field, or exit: a field the file ends inside of is a cut launch. */
static char *next_field(struct launch *l) {
  if (l->at >= l->length) malformed(l, "it ends before its \"end\" record (cut short?)");
  char *field = l->text + l->at;
  size_t n = strnlen(field, l->length - l->at);
  if (l->at + n >= l->length) malformed(l, "its last field has no terminating NUL (cut short?)");
  l->at += n + 1;
  return field;
}

static void make_parents(char *path) {
  for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
    *slash = 0;
    mkdir(path, 0755); /* an existing one is fine; a real failure shows when the file is made */
    *slash = '/';
  }
}

static void place_file(const char *launch_dir, const char *key, char *path, mode_t mode) {
  char from[4096];
  snprintf(from, sizeof from, "%s/%s", launch_dir, key);
  int in = open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    fprintf(stderr, "troupe-init: the launch's file %s is missing (%s): not running the command\n", from, strerror(errno));
    exit(CANNOT_RUN);
  }
  make_parents(path);
  int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int ok = out >= 0;
  char buffer[65536];
  ssize_t n;
  while (ok && (n = read(in, buffer, sizeof buffer)) != 0) ok = n > 0 && write(out, buffer, (size_t)n) == n;
  if (ok) ok = fchmod(out, mode) == 0;
  if (out >= 0 && close(out) != 0) ok = 0;
  close(in);
  if (!ok) {
    fprintf(stderr, "troupe-init: cannot put the file %s in place: %s; not running the command\n", path, strerror(errno));
    exit(CANNOT_RUN);
  }
}

static int valid_key(const char *key) {
  return key[0] && !strchr(key, '/') && strcmp(key, ".") != 0 && strcmp(key, "..") != 0;
}

int kubernetes_holder(const char *pod_info_dir, const char *launch_dir) {
  const int ended_by[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
  for (size_t i = 0; i < sizeof ended_by / sizeof ended_by[0]; i++) signal(ended_by[i], holder_signal);
  wait_for_release(pod_info_dir, launch_dir);

  char path[4096];
  snprintf(path, sizeof path, "%s/%s", launch_dir, LAUNCH_FILE);
  struct launch l = {.path = path};
  l.text = read_whole(path, &l.length);
  if (!l.text) {
    fprintf(stderr, "troupe-init: cannot read the launch %s: %s; not running the command\n", path, strerror(errno));
    return CANNOT_RUN;
  }
  /* The header with its NUL (sizeof counts it): anything else is not a launch of this format at all. */
  if (l.length < sizeof LAUNCH_HEADER || memcmp(l.text, LAUNCH_HEADER, sizeof LAUNCH_HEADER) != 0)
    malformed(&l, "it does not start with \"" LAUNCH_HEADER "\"");
  l.at = sizeof LAUNCH_HEADER;
  /* Every record is read and checked before any file is placed: a malformed launch changes nothing. */
  size_t records = l.length / 5 + 1; /* the shortest record, an empty word's "arg\0\0", takes 5 bytes */
  char **env = calloc(records + 1, sizeof *env), **argv = calloc(records + 1, sizeof *argv);
  struct placed { const char *key; char *path; mode_t mode; } *files = calloc(records + 1, sizeof *files);
  size_t envs = 0, args = 0, nfiles = 0;
  for (;;) {
    size_t record_at = l.at;
    const char *tag = next_field(&l);
    if (strcmp(tag, "end") == 0) break;
    if (strcmp(tag, "env") == 0) {
      char *word = next_field(&l);
      if (word[0] == '=' || !strchr(word, '=')) malformed(&l, "an \"env\" record that is not NAME=VALUE");
      env[envs++] = word;
    } else if (strcmp(tag, "arg") == 0) {
      argv[args++] = next_field(&l);
    } else if (strcmp(tag, "file") == 0) {
      const char *key = next_field(&l);
      char *to = next_field(&l);
      const char *mode = next_field(&l);
      char *rest;
      unsigned long bits = strtoul(mode, &rest, 8);
      if (!valid_key(key)) malformed(&l, "a \"file\" record whose key is not a file name of the launch");
      if (to[0] != '/' || to[strlen(to) - 1] == '/') malformed(&l, "a \"file\" record whose path is not an absolute file path");
      if (!mode[0] || *rest || bits > 07777) malformed(&l, "a \"file\" record whose mode is not an octal mode");
      files[nfiles++] = (struct placed){key, to, (mode_t)bits};
    } else {
      l.at = record_at;
      malformed(&l, "a record that is none of file, env, arg, end");
    }
  }
  if (l.at != l.length) malformed(&l, "something follows its \"end\" record");
  if (args == 0) malformed(&l, "it names no command (no \"arg\" record)");

  for (size_t i = 0; i < nfiles; i++) place_file(launch_dir, files[i].key, files[i].path, files[i].mode);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (size_t i = 0; i < sizeof ended_by / sizeof ended_by[0]; i++) signal(ended_by[i], SIG_DFL);
  /* Exactly the launch's environment; execvp looks for the command along its PATH (as `env -i` does). */
  environ = env;
  execvp(argv[0], argv);
  int error = errno;
  fprintf(stderr, "troupe: cannot run %s: %s\n", argv[0], strerror(error));
  return error == ENOENT ? 127 : 126;
}
