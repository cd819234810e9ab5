/*
 * Sandboxes started from a template mount namespace. Much of what a task's
 * sandbox mounts is the same for every task of a troupe: the host's mounts
 * private and read-only, the minimal /dev (a tmpfs, six devices bound in it,
 * the fd links), and an empty tmpfs, sealed, over troupe's home and each
 * other hidden path. Built for each task (sandbox.c), those are most of its
 * mounts. A template is a mount namespace holding them, made once; a
 * sandbox joins it and copies it (setns, then unshare(CLONE_NEWNS): the
 * copy's mounts share the template's file systems), then mounts only what is
 * its own: /proc, /tmp, /dev/pts and /dev/shm (never shared: another task's
 * pseudo-terminals and shared memory are not its to reach), its binds, its
 * hosts file. bench/spawner-floor.mjs measures both ways.
 *
 * A bind whose target is inside a hidden directory (the task's output, its
 * inputs, under troupe's home) needs a mount point in that directory's tmpfs,
 * which all copies share: the spawner makes it before the clone, through a
 * writable clone of the tmpfs (open_tree) that it keeps, and removes it once
 * no running sandbox uses it. What a task sees of the others' there is empty
 * directories it cannot list (mode 0711), while they run.
 *
 * A sandbox starts from a template only where the result is the same as
 * sandbox.c's: an unprivileged command (a privileged one could write to the
 * shared tmpfs), the host's root read-only, and none of its own mounts under
 * /dev (a GPU's device), on a hidden directory or one holding a template's
 * mount (a tmpfs shadowing /run for a file would uncover what is hidden in
 * it), nor anything but binds inside a hidden directory. Otherwise, and when
 * a template cannot be made (an older kernel: open_tree, move_mount and
 * pidfd_getfd are Linux 5.2-5.6), the sandbox is built whole, as before.
 * TROUPE_SANDBOX_TEMPLATE=0 never uses one (for comparison).
 */
#define _GNU_SOURCE
#include "sandbox-template.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TEMPLATES 8
#define MAX_HIDES 64

/* A mount point made in a hidden directory's tmpfs, and how many running sandboxes use it. */
struct point {
  struct point *next;
  int hide;
  char *relative; /* to the hidden directory */
  int is_dir;
  int users;
};

struct sandbox_template {
  char *key; /* its directives, NUL-separated */
  size_t key_length;
  int mnt_fd; /* -1: it could not be made (not tried again) */
  size_t hide_count;
  char *hides[MAX_HIDES];
  int hide_fds[MAX_HIDES]; /* writable clones of the hidden directories' tmpfs */
  dev_t hide_devs[MAX_HIDES]; /* what each hidden path was on the host when the template was made */
  ino_t hide_inodes[MAX_HIDES];
  struct point *points;
};

struct template_use {
  sandbox_template_t *template;
  size_t count;
  struct point *points[];
};

static sandbox_template_t *templates[MAX_TEMPLATES];
static size_t template_count;
static int enabled = 1;
/* The host's mount table, watched: a change makes every template stale (it holds the mounts of its making). */
static int mount_table = -1;

static void read_mount_table(void) {
  char buffer[65536];
  lseek(mount_table, 0, SEEK_SET);
  while (read(mount_table, buffer, sizeof buffer) > 0) {
  }
}

void sandbox_templates_init(void) {
  const char *setting = getenv("TROUPE_SANDBOX_TEMPLATE");
  enabled = !(setting && strcmp(setting, "0") == 0);
  mount_table = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  /* Without a way to see the host's mounts change, no template: a sandbox would miss a file system mounted since. */
  if (mount_table < 0) enabled = 0;
  else read_mount_table();
}

/*
 * Templates made before a change of the host's mounts (a file system mounted since would be missing from
 * sandboxes copied from them), or of a hidden path (removed and made again, it is not the directory the template
 * covers), are used no more; made again at the next sandbox. The stale ones stay in memory for the mount points
 * their running sandboxes hold (released as those end).
 */
static void drop_stale_templates(void) {
  struct pollfd watch = {.fd = mount_table, .events = POLLPRI};
  int mounts_changed = poll(&watch, 1, 0) > 0 && (watch.revents & (POLLPRI | POLLERR));
  if (mounts_changed) read_mount_table();
  for (size_t i = 0; i < template_count;) {
    sandbox_template_t *template = templates[i];
    int stale = mounts_changed;
    for (size_t h = 0; h < template->hide_count && !stale; h++) {
      struct stat st;
      stale = stat(template->hides[h], &st) != 0 || st.st_dev != template->hide_devs[h] || st.st_ino != template->hide_inodes[h];
    }
    if (!stale) {
      i++;
      continue;
    }
    templates[i] = templates[--template_count];
    if (template->mnt_fd >= 0) close(template->mnt_fd);
    template->mnt_fd = -1;
  }
}

int sandbox_template_fd(const sandbox_template_t *template) { return template->mnt_fd; }

static int is_under(const char *path, const char *dir) {
  size_t length = strlen(dir);
  return strncmp(path, dir, length) == 0 && (path[length] == '\0' || path[length] == '/');
}

/* The path an op mounts on or makes. */
static const char *target_of(const mount_op_t *op) {
  return op->kind == MOUNT_BIND || op->kind == MOUNT_RO_BIND || op->kind == MOUNT_SYMLINK || op->kind == MOUNT_DATA ? op->b : op->a;
}

static int hide_index(const sandbox_t *box, const char *path) {
  int index = 0;
  for (size_t i = 0; i < box->mount_count; i++) {
    if (box->mounts[i].kind != MOUNT_HIDE) continue;
    if (strcmp(box->mounts[i].a, path) == 0) return index;
    index++;
  }
  return -1;
}

/* The template's part: the minimal /dev (but pts and shm), the hides and their seals. */
static int is_template_op(const sandbox_t *box, const mount_op_t *op) {
  return op->kind == MOUNT_DEV || op->kind == MOUNT_HIDE || (op->kind == MOUNT_SEAL && hide_index(box, op->a) >= 0);
}

/* Whether this box is built the same from a template; its key (the template's directives) in `key`. */
static int template_key(const sandbox_t *box, char *key, size_t size, size_t *length) {
  if (!box->read_only_root || !box->drop_to_user) return 0;
  const char *dev = NULL;
  const char *hides[MAX_HIDES];
  size_t hide_count = 0;
  *length = 0;
  for (size_t i = 0; i < box->mount_count; i++) {
    const mount_op_t *op = &box->mounts[i];
    if (!is_template_op(box, op)) continue;
    if (op->kind == MOUNT_DEV) {
      if (dev) return 0;
      dev = op->a;
    }
    if (op->kind == MOUNT_HIDE) {
      if (hide_count == MAX_HIDES) return 0;
      hides[hide_count++] = op->a;
    }
    const char *kind = op->kind == MOUNT_DEV ? "dev" : op->kind == MOUNT_HIDE ? "hide" : "seal";
    int n = snprintf(key + *length, size - *length, "%s%c%s%c", kind, 0, op->a, 0);
    if (n < 0 || (size_t)n >= size - *length) return 0;
    *length += (size_t)n;
  }
  for (size_t i = 0; i < box->mount_count; i++) {
    const mount_op_t *op = &box->mounts[i];
    if (is_template_op(box, op)) continue;
    const char *target = target_of(op);
    if (dev && (is_under(target, dev) || is_under(dev, target))) return 0;
    for (size_t h = 0; h < hide_count; h++) {
      if (is_under(hides[h], target)) return 0; /* on a hidden directory, or one holding it */
      if (is_under(target, hides[h]) && op->kind != MOUNT_BIND && op->kind != MOUNT_RO_BIND) return 0;
    }
  }
  return 1;
}

static void send_fds_and_wait(int to, int from, const int *fds, size_t count) {
  if (write(to, fds, count * sizeof *fds) != (ssize_t)(count * sizeof *fds)) _exit(1);
  char done;
  if (read(from, &done, 1) < 0) _exit(1);
  _exit(0);
}

/*
 * Made by a child of the spawner (a failure there, which sandbox_fail ends with
 * exit 1, costs the template, not the spawner): it builds the namespace, then
 * the spawner takes its fds (pidfd_getfd) before it exits.
 */
static void make_template(sandbox_template_t *template, const sandbox_t *box) {
  template->mnt_fd = -1;
  int up[2], down[2];
  if (pipe2(up, O_CLOEXEC)) return;
  if (pipe2(down, O_CLOEXEC)) {
    close(up[0]), close(up[1]);
    return;
  }
  size_t count = 1 + template->hide_count;
  pid_t child = fork();
  if (child == 0) {
    close(up[0]);
    close(down[1]); /* so that the spawner's close of it is the end of file below */
    int quiet = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (quiet >= 0) dup2(quiet, STDERR_FILENO);
    if (unshare(CLONE_NEWNS)) _exit(1);
    sandbox_private_root(1);
    int fds[1 + MAX_HIDES];
    size_t hides = 0;
    for (size_t i = 0; i < box->mount_count; i++) {
      const mount_op_t *op = &box->mounts[i];
      if (!is_template_op(box, op)) continue;
      if (op->kind == MOUNT_DEV) sandbox_mount_dev_base(op->a);
      if (op->kind == MOUNT_SEAL) sandbox_make_read_only(op->a, 0);
      if (op->kind != MOUNT_HIDE) continue;
      sandbox_hide(op->a);
      /* Taken before the seal: the mount points are made through it. */
      fds[1 + hides] = (int)syscall(SYS_open_tree, AT_FDCWD, op->a, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (fds[1 + hides++] < 0) _exit(1);
    }
    fds[0] = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (fds[0] < 0) _exit(1);
    send_fds_and_wait(up[1], down[0], fds, count);
  }
  close(up[1]);
  close(down[0]);
  int theirs[1 + MAX_HIDES], ours[1 + MAX_HIDES];
  size_t taken = 0;
  int pidfd = child > 0 ? (int)syscall(SYS_pidfd_open, child, 0) : -1;
  if (pidfd >= 0 && read(up[0], theirs, count * sizeof *theirs) == (ssize_t)(count * sizeof *theirs))
    for (; taken < count; taken++) {
      ours[taken] = (int)syscall(SYS_pidfd_getfd, pidfd, theirs[taken], 0);
      if (ours[taken] < 0) break;
    }
  if (pidfd >= 0) close(pidfd);
  close(up[0]);
  close(down[1]); /* the child's "done" */
  if (child > 0) waitpid(child, NULL, 0);
  if (taken < count) {
    for (size_t i = 0; i < taken; i++) close(ours[i]);
    return;
  }
  template->mnt_fd = ours[0];
  for (size_t i = 0; i < template->hide_count; i++) template->hide_fds[i] = ours[1 + i];
}

sandbox_template_t *sandbox_template_for(const sandbox_t *box) {
  static char key[65536];
  size_t length;
  if (!enabled || !template_key(box, key, sizeof key, &length)) return NULL;
  drop_stale_templates();
  for (size_t i = 0; i < template_count; i++)
    if (templates[i]->key_length == length && memcmp(templates[i]->key, key, length) == 0)
      return templates[i]->mnt_fd >= 0 ? templates[i] : NULL;
  if (template_count == MAX_TEMPLATES) return NULL; /* so many homes at once: built whole */
  sandbox_template_t *template = calloc(1, sizeof *template);
  if (!template || !(template->key = malloc(length))) {
    free(template);
    return NULL;
  }
  memcpy(template->key, key, length);
  template->key_length = length;
  for (size_t i = 0; i < box->mount_count; i++) {
    if (box->mounts[i].kind != MOUNT_HIDE) continue;
    struct stat st;
    if (stat(box->mounts[i].a, &st) == 0) {
      template->hide_devs[template->hide_count] = st.st_dev;
      template->hide_inodes[template->hide_count] = st.st_ino;
    }
    template->hides[template->hide_count++] = strdup(box->mounts[i].a);
  }
  make_template(template, box);
  templates[template_count++] = template;
  return template->mnt_fd >= 0 ? template : NULL;
}

static int is_mkdir_of(const sandbox_t *box, const char *path) {
  for (size_t i = 0; i < box->mkdir_count; i++)
    if (strcmp(box->mkdirs[i], path) == 0) return 1;
  return 0;
}

/* Makes `relative` (and its parents) in hidden directory `hide`: 0 or an errno. */
static int make_point(sandbox_template_t *template, int hide, const char *relative, int is_dir) {
  int dir = template->hide_fds[hide];
  char path[4096];
  if (snprintf(path, sizeof path, "%s", relative) >= (int)sizeof path) return ENAMETOOLONG;
  for (char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    if (mkdirat(dir, path, 0711) && errno != EEXIST) return errno;
    *slash = '/';
  }
  if (is_dir) return mkdirat(dir, path, 0711) && errno != EEXIST ? errno : 0;
  int fd = openat(dir, path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

static int point_in_use(const sandbox_template_t *template, int hide, const char *relative) {
  for (struct point *p = template->points; p; p = p->next)
    if (p->hide == hide && strcmp(p->relative, relative) == 0) return 1;
  return 0;
}

/* The mount point and the parents no other point needs, gone (a parent still holding something stays). */
static void remove_point(sandbox_template_t *template, struct point *point) {
  int dir = template->hide_fds[point->hide];
  if (unlinkat(dir, point->relative, point->is_dir ? AT_REMOVEDIR : 0)) return;
  for (char *slash = strrchr(point->relative, '/'); slash; slash = strrchr(point->relative, '/')) {
    *slash = '\0';
    if (point_in_use(template, point->hide, point->relative) || unlinkat(dir, point->relative, AT_REMOVEDIR)) return;
  }
}

void sandbox_template_release(template_use_t *use) {
  if (!use) return;
  sandbox_template_t *template = use->template;
  for (size_t i = 0; i < use->count; i++) {
    struct point *point = use->points[i];
    if (--point->users > 0) continue;
    for (struct point **at = &template->points; *at; at = &(*at)->next)
      if (*at == point) {
        *at = point->next;
        break;
      }
    remove_point(template, point);
    free(point->relative);
    free(point);
  }
  free(use);
}

template_use_t *sandbox_template_use(sandbox_template_t *template, const sandbox_t *box, const char **error) {
  static char message[4200];
  template_use_t *use = calloc(1, sizeof *use + box->mount_count * sizeof(struct point *));
  if (!use) {
    *error = "out of memory";
    return NULL;
  }
  use->template = template;
  for (size_t i = 0; i < box->mount_count; i++) {
    const mount_op_t *op = &box->mounts[i];
    if (op->kind != MOUNT_BIND && op->kind != MOUNT_RO_BIND) continue;
    int hide = -1;
    for (size_t h = 0; h < template->hide_count && hide < 0; h++)
      if (is_under(op->b, template->hides[h])) hide = (int)h;
    if (hide < 0) continue;
    const char *relative = op->b + strlen(template->hides[hide]) + 1;
    struct point *point = template->points;
    while (point && !(point->hide == hide && strcmp(point->relative, relative) == 0)) point = point->next;
    if (!point) {
      /* Like its source: a directory, or an empty file; a source not made yet is one of the directories to make. */
      struct stat st;
      int is_dir = stat(op->a, &st) == 0 ? S_ISDIR(st.st_mode) : is_mkdir_of(box, op->a);
      int failed = make_point(template, hide, relative, is_dir);
      if (failed) {
        snprintf(message, sizeof message, "cannot make the mount point %s: %s", op->b, strerror(failed));
        *error = message;
        sandbox_template_release(use);
        return NULL;
      }
      point = calloc(1, sizeof *point);
      if (!point || !(point->relative = strdup(relative))) {
        free(point);
        *error = "out of memory";
        sandbox_template_release(use);
        return NULL;
      }
      point->hide = hide;
      point->is_dir = is_dir;
      point->next = template->points;
      template->points = point;
    }
    point->users++;
    use->points[use->count++] = point;
  }
  return use;
}

void sandbox_init_from_template(sandbox_t *box, int template_fd) {
  sandbox_make_dirs(box);
  /* Every bind's source, cloned here, in the host's mount namespace: the template hides some of them. */
  const int *sources = sandbox_open_sources(box, 1);
  if (setns(template_fd, CLONE_NEWNS)) sandbox_fail("cannot join the sandbox template: %s", strerror(errno));
  close(template_fd);
  if (unshare(CLONE_NEWNS)) sandbox_fail("cannot copy the sandbox template: %s", strerror(errno));
  for (size_t i = 0; i < box->mount_count; i++) {
    const mount_op_t *op = &box->mounts[i];
    if (op->kind == MOUNT_DEV) sandbox_mount_dev_own(op->a);
    else if (!is_template_op(box, op)) sandbox_apply(box, op, sources[i], 1);
  }
  sandbox_enter(box);
}
