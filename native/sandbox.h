/* troupe's own task sandbox, for the host runtime as root: see sandbox.c. */
#ifndef TROUPE_SANDBOX_H
#define TROUPE_SANDBOX_H

#include <sys/types.h>

enum mount_kind { MOUNT_TMPFS, MOUNT_BIND, MOUNT_RO_BIND, MOUNT_SYMLINK, MOUNT_PROC, MOUNT_DATA, MOUNT_DEV, MOUNT_HIDE, MOUNT_SEAL };

typedef struct {
  enum mount_kind kind;
  const char *a; /* tmpfs/proc/dev/hide/seal: path; bind: source; symlink: link text; data: contents */
  const char *b; /* bind/data: target; symlink: path of the link */
} mount_op_t;

#define SANDBOX_MAX_MOUNTS 16384
#define SANDBOX_MAX_ENV 16384

typedef struct {
  const char *hostname;
  const char *cwd;
  size_t mkdir_count;
  const char *mkdirs[64];
  int netns;
  int read_only_root;
  /* The command's user (set by "user UID GID"): it runs unprivileged; otherwise as root. */
  int drop_to_user;
  uid_t uid;
  gid_t gid;
  size_t mount_count;
  mount_op_t mounts[SANDBOX_MAX_MOUNTS];
  size_t env_count;
  char *env[SANDBOX_MAX_ENV + 1];
  /* The command keeps PID 1's environment (bwrap's, in supervise mode) instead of `env`. */
  int inherit_env;
  char **argv;
} sandbox_t;

/* Reads directives (see sandbox.c) up to "--", then argv; NULL or what is wrong. */
const char *sandbox_parse(sandbox_t *box, const char **fields, size_t count);
/* fork() into new namespaces (but the mount namespace when it starts from a template); 0 in the child, like fork. */
pid_t sandbox_clone(const sandbox_t *box, int from_template);
/* In the child: mounts, hostname, barrier, then the command; never returns. */
void sandbox_init(sandbox_t *box) __attribute__((noreturn));
/*
 * As PID 1 of the sandbox's PID namespace, once it is set up: the barrier's
 * messages on fd 4 ("go", "restart GRACE_MS"), the command's end on fd 3;
 * never returns (see sandbox.c).
 */
void sandbox_supervise(sandbox_t *box) __attribute__((noreturn));
void close_other_fds(int from);
/* A minimal /dev at `path`: a tmpfs with the harmless devices of the host, pts, shm and the fd links. */
void sandbox_mount_dev(const char *path);
/* Its two halves: what tasks may share (a template's: the tmpfs, devices, links), what each needs of its own (pts, shm). */
void sandbox_mount_dev_base(const char *path);
void sandbox_mount_dev_own(const char *path);

/* Pieces of sandbox_init, for sandbox-template.c. */
/* The `mkdir` directives, on the host, given to the task's user. */
void sandbox_make_dirs(const sandbox_t *box);
/* / and everything under it private, and read-only if asked. */
void sandbox_private_root(int read_only);
/* One mount directive. A bind's `source`: an O_PATH fd, or with `detached` a tree open_tree() cloned. */
void sandbox_apply(const sandbox_t *box, const mount_op_t *op, int source, int detached);
/* An empty tmpfs over `path` (the hide directive). */
void sandbox_hide(const char *path);
void sandbox_make_read_only(const char *target, unsigned int recursive);
/*
 * Every bind's source, opened before any mount (a later tmpfs may cover it): O_PATH fds, or with `detached`
 * trees open_tree() clones, to attach in another mount namespace. Indexed as box->mounts, -1 for the others.
 */
int *sandbox_open_sources(const sandbox_t *box, int detached);
/* Hostname, working directory, then PID 1's work (sandbox_supervise); never returns. */
void sandbox_enter(sandbox_t *box) __attribute__((noreturn));
/* In the command's process, before exec: the user, no capabilities, no_new_privs. */
void sandbox_drop_privileges(uid_t uid, gid_t gid);
/* Setup failed: say why in the task's log (stderr) and end without an exit-code line. */
void sandbox_fail(const char *format, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* In the spawner at start-up: a handle on itself that its sandboxes can watch. */
void sandbox_remember_spawner(void);
/* First thing in a new sandbox: die with the spawner, even if it died a moment ago. */
void sandbox_die_with_spawner(void);

#endif
