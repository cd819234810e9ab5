/**
 * The command lines that build a sandbox from its SandboxSpec (sandbox.ts,
 * which decides what the sandbox holds): bubblewrap's arguments, with
 * setpriv to drop to the task's user as root, and troupe-spawner's own
 * directives (native/sandbox.c).
 */
import { posix } from "node:path";
import { whichPath } from "../../util/executables.js";
import { isUnder, STATUS_FD, BLOCK_FD, SUPERVISED_BWRAP_STATUS_FD, SandboxError, type SandboxSpec, type TaskUser } from "./sandbox.js";

let setprivPath: string | undefined;

/**
 * The bwrap command line (after `bwrap`): the host root read-only, then the
 * spec's mounts over it. As root (no user namespace) bwrap cannot change the
 * command's user itself: `setpriv` (util-linux) does, inside the sandbox;
 * unprivileged, the user namespace maps only the caller's own uid.
 */
export function bwrapArguments(spec: SandboxSpec, hidden?: HiddenVariables): string[] {
  const args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-uts", "--unshare-ipc", "--hostname", spec.hostname];
  if (spec.supervisor) args.push("--as-pid-1");
  if (spec.userNamespace) args.push("--unshare-user", "--cap-drop", "ALL");
  if (spec.netns) args.push("--unshare-net");
  args.push("--ro-bind", "/", "/");
  // bwrap makes a mount point's missing parents 0700: a task that is not root could not reach it.
  const covered: string[] = [];
  const made = new Set<string>();
  const parentsOf = (target: string) => {
    const top = covered.filter((c) => target !== c && isUnder(target, c)).sort((a, b) => b.length - a.length)[0];
    if (top === undefined) return;
    const parents: string[] = [];
    for (let dir = posix.dirname(target); dir !== top && !made.has(dir); dir = posix.dirname(dir)) parents.unshift(dir);
    for (const dir of parents) {
      args.push("--perms", "0755", "--dir", dir);
      made.add(dir);
    }
  };
  for (const op of spec.mounts) {
    if (op.kind === "tmpfs" || op.kind === "hide") covered.push(op.path);
    else if (op.kind === "bind") parentsOf(op.target);
    if (op.kind === "tmpfs") args.push(...(op.path === "/tmp" ? ["--perms", "1777"] : []), "--tmpfs", op.path);
    else if (op.kind === "hide") args.push("--perms", "0755", "--tmpfs", op.path);
    else if (op.kind === "seal") args.push("--remount-ro", op.path);
    else if (op.kind === "proc") args.push("--proc", op.path);
    else if (op.kind === "dev") args.push("--dev", op.path);
    else if (op.kind === "device") args.push(op.ifPresent ? "--dev-bind-try" : "--dev-bind", op.path, op.path);
    else if (op.kind === "symlink") args.push("--symlink", op.text, op.path);
    else if (op.kind === "data") throw new Error("bwrap is given staged files, not file contents");
    else args.push(op.readOnly ? "--ro-bind" : "--bind", op.source, op.target);
  }
  args.push("--chdir", spec.cwd, "--clearenv");
  for (const [key, value] of Object.entries(spec.env)) if (!hidden?.keys.has(key)) args.push("--setenv", key, value);
  // After --clearenv: bwrap applies both as it reads them.
  if (hidden) args.push("--args", String(hidden.fd));
  // Supervised: the barrier is PID 1's (troupe-spawner supervise), bwrap's status goes to fd 5, the same pipe as fd 3.
  if (spec.supervisor) args.push("--json-status-fd", String(SUPERVISED_BWRAP_STATUS_FD), "--", spec.supervisor, "supervise", "--");
  else args.push("--json-status-fd", String(STATUS_FD), "--block-fd", String(BLOCK_FD), "--");
  if (spec.user && !spec.userNamespace) args.push(...setprivArguments(spec.user));
  args.push(...spec.argv);
  return args;
}

/** Variables bwrap reads from a file descriptor (`--args FD`) rather than its command line, which everyone may read. */
export interface HiddenVariables {
  fd: number;
  keys: ReadonlySet<string>;
}

/**
 * As native/sandbox-confine.c does for troupe's own sandbox: the user, no
 * capabilities, no_new_privs. By its absolute path, found on troupe's PATH:
 * bwrap would look a bare name up on the task's, which the task sets.
 */
function setprivArguments(user: TaskUser): string[] {
  const setpriv = (setprivPath ??= whichPath("setpriv"));
  if (setpriv === undefined)
    throw new SandboxError("bubblewrap as root needs setpriv (util-linux) to run tasks unprivileged: it is not on PATH");
  return [
    setpriv,
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--ambient-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
  ];
}

/** The directives of troupe-spawner's own sandbox (native/sandbox.c), then `--` and the command. */
export function spawnerDirectives(spec: SandboxSpec): string[] {
  const fields = ["hostname", spec.hostname, "chdir", spec.cwd, "read-only-root"];
  if (spec.netns) fields.push("netns");
  if (spec.user) fields.push("user", String(spec.user.uid), String(spec.user.gid));
  for (const dir of spec.makeDirs) fields.push("mkdir", dir);
  for (const op of spec.mounts) {
    if (op.kind === "tmpfs" || op.kind === "proc" || op.kind === "dev" || op.kind === "hide" || op.kind === "seal")
      fields.push(op.kind, op.path);
    else if (op.kind === "device" && op.ifPresent)
      throw new Error("troupe's own sandbox binds the host's devices it was given, not maybe-present ones");
    else if (op.kind === "device") fields.push("bind", op.path, op.path);
    else if (op.kind === "symlink") fields.push("symlink", op.text, op.path);
    else if (op.kind === "data") fields.push("ro-data", op.contents, op.target);
    else fields.push(op.readOnly ? "ro-bind" : "bind", op.source, op.target);
  }
  for (const [key, value] of Object.entries(spec.env)) fields.push("env", `${key}=${value}`);
  fields.push("--", ...spec.argv);
  return fields;
}
