/**
 * The sandbox of one task attempt: its own PID, mount, UTS and IPC namespaces
 * (and network namespace in netns mode), the host's file system read-only,
 * troupe's home hidden, a minimal /dev, a private /tmp, its output directory
 * and `files:` writable at their paths, inputs read-only, its hosts file and
 * resolver (sandbox-names.ts), and nothing of the host's environment but what is
 * passed on; the command runs as an unprivileged user (no capabilities,
 * no_new_privs) unless the task is privileged and the pool allows it. One
 * spec, built by troupe-spawner's own sandbox as root (native/sandbox.c,
 * fast) or by bubblewrap (unprivileged, or without the spawner).
 */
import { existsSync, readdirSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { posix } from "node:path";
import type { TaskLaunch } from "../types.js";

export interface SandboxPlan {
  /** Host directory for this attempt's staged files. */
  dir: string;
  /** troupe's home (database, tokens, every run's outputs, logs and sandboxes): no file in it is visible to the task. */
  home: string;
  /** What to hide (hiddenPaths): troupe's home, or the private directory it is in, and the host's sockets. */
  hidden: HiddenPath[];
  /**
   * Built by troupe's own sandbox (native/sandbox.c), which makes the output
   * directory and places the hosts file from its text itself; bwrap is given
   * both ready-made (the output directory made, the hosts file staged).
   */
  ownSandbox: boolean;
  /** /etc/hosts (sandbox-names.ts), and where it is staged for bwrap. */
  hosts: { text: string; file: string };
  /**
   * /etc/resolv.conf pointing at troupe's name server, when it runs: `target`
   * is where the host's really is (a mount follows a symlink, and must not find it dangling).
   */
  resolver?: { text: string; file: string; target: string };
  /** Staged copy of each `files:` entry, by index. */
  stagedFiles: string[];
  netns: boolean;
  /** Not root: bwrap needs a user namespace to do the rest. */
  userNamespace: boolean;
  /** Who the command runs as; undefined: root (a privileged task, where the pool allows it). */
  user: TaskUser | undefined;
  env: Record<string, string>;
  /**
   * Devices bound where they exist on the machine that builds the sandbox
   * (bwrap's `--dev-bind-try`): a cluster node's GPUs, which troupe cannot
   * see from where it computes the sandbox. bwrap only.
   */
  nodeDevices?: string[];
  /**
   * bwrap only: troupe-spawner, started by bwrap as the sandbox's PID 1
   * (`supervise`), which holds the command at the barrier and can restart it
   * in place, as troupe's own sandbox's PID 1 does.
   */
  supervisor?: string;
}

/** A task's user: numeric, as the kernel knows it (no name is looked up inside a sandbox). */
export interface TaskUser {
  uid: number;
  gid: number;
}

/** nobody:nogroup, the user tasks run as unless the pool says otherwise. */
export const DEFAULT_TASK_USER: TaskUser = { uid: 65534, gid: 65534 };

/** File descriptors the sandbox talks on (bwrap's and troupe's own): status JSON out, barrier in. */
export const STATUS_FD = 3;
export const BLOCK_FD = 4;
/** bwrap's status channel when troupe-spawner supervises its sandbox: fd 3's pipe, as troupe-spawner gives it (spawn-supervised). */
export const SUPERVISED_BWRAP_STATUS_FD = 5;

export class SandboxError extends Error {}

/** What is laid over the host's root, in order. */
export type MountOp =
  | { kind: "tmpfs"; path: string }
  | { kind: "bind"; source: string; target: string; readOnly: boolean }
  | { kind: "symlink"; text: string; path: string }
  | { kind: "proc"; path: string }
  /** An empty tmpfs anyone may pass through (0755): the mount points of what the task may see in there. */
  | { kind: "hide"; path: string }
  /** Made read-only once what it holds is mounted (that mount alone, not those in it). */
  | { kind: "seal"; path: string }
  /** A minimal /dev: null, zero, full, random, urandom, tty, pts, shm, the fd links. */
  | { kind: "dev"; path: string }
  /** A device of the host's (a GPU the task was given); `ifPresent`: where it exists when the sandbox is built (bwrap only). */
  | { kind: "device"; path: string; ifPresent?: boolean }
  /** A read-only file with these contents (troupe's own sandbox only: bwrap gets staged files). */
  | { kind: "data"; contents: string; target: string };

/**
 * Where a task's command starts on the host runtime: `/`, as in the images
 * most workflows name (busybox, alpine, ubuntu have no WORKDIR) and as OSMO
 * runs them (its pods set no workingDir), so that a relative path means what
 * it means there: `tmp/x` is the task's private /tmp/x, and a file written
 * relative to `/` elsewhere meets the read-only root, not the output
 * directory ({{output}} is where outputs go, by its path).
 */
export const TASK_START_DIRECTORY = "/";

/** One task attempt's sandbox, whichever tool builds it. */
export interface SandboxSpec {
  hostname: string;
  netns: boolean;
  userNamespace: boolean;
  user: TaskUser | undefined;
  /** Host directories to make before anything else (troupe's own sandbox makes them itself). */
  makeDirs: string[];
  mounts: MountOp[];
  cwd: string;
  env: Record<string, string>;
  argv: string[];
  /** See SandboxPlan.supervisor. */
  supervisor?: string;
}

/**
 * Laid over the host's root, which is read-only beneath: what the task may
 * write (its /tmp, its output, its files) and what it must not see (troupe's
 * home, the host's devices, the network namespaces of other tasks).
 */
export function sandboxSpec(launch: TaskLaunch, plan: SandboxPlan): SandboxSpec {
  const mounts: MountOp[] = [
    { kind: "proc", path: "/proc" },
    { kind: "dev", path: "/dev" },
    ...gpuDevicePaths(launch).map((path): MountOp => ({ kind: "device", path })),
    ...(plan.nodeDevices ?? []).map((path): MountOp => ({ kind: "device", path, ifPresent: true })),
    { kind: "tmpfs", path: "/tmp" },
    ...fileMounts(launch, plan),
  ];
  // After the files: a directory shadowed for a new file shows what it holds, troupe's home too if it is there.
  for (const { path, directory } of plan.hidden)
    mounts.push(directory ? { kind: "hide", path } : { kind: "bind", source: "/dev/null", target: path, readOnly: true });
  mounts.push({ kind: "bind", source: launch.outputDir, target: launch.outputDir, readOnly: false });
  for (const input of launch.inputDirs) mounts.push({ kind: "bind", source: input, target: input, readOnly: true });
  // Where it is, even under what is hidden (a checkout in root's closed home).
  if (plan.supervisor) mounts.push({ kind: "bind", source: plan.supervisor, target: plan.supervisor, readOnly: true });
  const placed = (file: { text: string; file: string }, target: string): MountOp =>
    plan.ownSandbox ? { kind: "data", contents: file.text, target } : { kind: "bind", source: file.file, target, readOnly: true };
  mounts.push(placed(plan.hosts, "/etc/hosts"));
  // A task that brings its own resolv.conf (files:) keeps it.
  const ownResolver = launch.files.some((f) => ["/etc/resolv.conf", plan.resolver?.target].includes(posix.normalize(f.path)));
  if (plan.resolver && !ownResolver) mounts.push(placed(plan.resolver, plan.resolver.target));
  // The directories made to hold mount points are not the task's to write (in a user namespace it would own them).
  for (const op of [...mounts])
    if (op.kind === "hide" || (op.kind === "tmpfs" && op.path !== "/tmp")) mounts.push({ kind: "seal", path: op.path });
  return {
    hostname: launch.taskName,
    netns: plan.netns,
    userNamespace: plan.userNamespace,
    user: plan.user,
    makeDirs: plan.ownSandbox ? [launch.outputDir, ...writableMountSources(launch)] : [],
    mounts,
    cwd: TASK_START_DIRECTORY,
    env: plan.env,
    argv: launch.argv,
    supervisor: plan.supervisor,
  };
}

/**
 * Host paths no task has any business seeing, hidden where they exist: other
 * tasks' network namespaces, and the sockets of the daemons that would run
 * anything for whoever reaches them (a read-only mount does not stop a
 * connect(): a task that is troupe's own user, or in the docker group, would).
 */
const HIDDEN_HOST_PATHS = [
  "/run/netns",
  "/run/user",
  "/run/podman",
  "/run/containerd",
  "/run/docker",
  "/run/docker.sock",
  "/var/run/docker.sock",
  "/run/dbus",
];

/** A directory hidden under an empty tmpfs, or another file (a socket) under /dev/null. */
export interface HiddenPath {
  path: string;
  directory: boolean;
}

/**
 * What hides troupe's home (and HIDDEN_HOST_PATHS, and any other of troupe's
 * own directories given): the home itself, or,
 * where one of its parents is closed to others (root's own home: 0700), that
 * parent, so that the task's user can reach the output and inputs shown in
 * there. Under /tmp nothing: the task's /tmp is its own already.
 */
export function hiddenPaths(home: string, ...others: string[]): HiddenPath[] {
  const out = new Map<string, HiddenPath>();
  for (const spelled of [home, ...others, ...HIDDEN_HOST_PATHS]) {
    // As it really is: a symlink's target is what a mount covers, and what files: must stay out of.
    const path = realPath(spelled);
    if (path === undefined || isUnder(path, "/tmp")) continue;
    let cover = path;
    for (let dir = posix.dirname(path); dir !== "/"; dir = posix.dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) cover = dir;
    }
    out.set(cover, { path: cover, directory: cover !== path || statSync(path).isDirectory() });
  }
  return [...out.values()];
}

function realPath(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    // No such path on this host: nothing to mount or hide there.
    return undefined;
  }
}

/** Where no file of a task's may go, whatever the validator let through (it cannot know the host's symlinks). */
const UNPLACEABLE = ["/proc", "/sys", "/dev"];

/** The device nodes of these GPUs (NVIDIA's: each one's own, and the shared control devices), whether they exist or not. */
export function gpuDeviceNodes(indices: readonly number[]): string[] {
  if (indices.length === 0) return [];
  return [
    ...indices.map((index) => `/dev/nvidia${index}`),
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
  ];
}

/** The device nodes of the GPUs a task was given, those this host has. */
function gpuDevicePaths(launch: TaskLaunch): string[] {
  return gpuDeviceNodes(launch.gpuDevices ?? []).filter((node) => existsSync(node));
}

export function isUnder(path: string, dir: string): boolean {
  const normal = posix.normalize(path);
  return normal === dir || normal.startsWith(`${dir}/`);
}

/**
 * `files:` are bound at their paths. Under /tmp (a private tmpfs) and over an
 * existing file that is all it takes. A file that does not exist on the host
 * needs a mount point that must not be created on the host: its nearest
 * existing directory is shadowed by a tmpfs holding binds of everything the
 * directory contains (bwrap 0.8 has no overlays), and the new file is made there.
 */
function fileMounts(launch: TaskLaunch, plan: SandboxPlan): MountOp[] {
  const placements = launch.files.map((file, index) => ({
    what: "place",
    target: posix.normalize(file.path),
    op: (target: string): MountOp => ({ kind: "bind", source: plan.stagedFiles[index] as string, target, readOnly: false }),
  }));
  // The launch's mounts (checkpoint directories, a pool's volumes) go where files do, their mount points made alike.
  for (const mount of launch.mounts ?? [])
    placements.push({
      what: "mount a directory at",
      target: posix.normalize(mount.target),
      op: (target) => ({ kind: "bind", source: mount.source, target, readOnly: mount.readOnly }),
    });
  const args: MountOp[] = [];
  const shadowed = new Set<string>();
  for (const { what, target, op } of placements) {
    if (isUnder(target, plan.home)) throw new SandboxError(`cannot ${what} ${target}: it is inside troupe's home, which tasks do not see`);
    if (!isUnder(target, "/tmp")) checkPlaceable(target, plan, what);
    if (!isUnder(target, "/tmp") && !existsSync(target)) {
      let dir = posix.dirname(target);
      while (dir !== "/" && !existsSync(dir)) dir = posix.dirname(dir);
      if (dir === "/")
        throw new SandboxError(
          `cannot ${what} ${target}: its top-level directory does not exist on this host (the host runtime cannot create directories at /)`,
        );
      if (![...shadowed].some((d) => isUnder(dir, d))) {
        args.push(...shadowDirectory(dir));
        shadowed.add(dir);
      }
    }
    args.push(op(target));
  }
  return args;
}

/**
 * The mounts are made as root and follow symlinks: a files: path must be the
 * path it spells (no symlink on the way, such as one an earlier task left in
 * its output), and outside what tasks do not see.
 */
function checkPlaceable(target: string, plan: SandboxPlan, what: string): void {
  let existing = target;
  while (existing !== "/" && !existsSync(existing)) existing = posix.dirname(existing);
  const real = realPath(existing) ?? existing;
  if (real !== existing)
    throw new SandboxError(
      `cannot ${what} ${target}: ${existing} is a symbolic link (to ${real}) on this host; write the path it leads to`,
    );
  const off = [...plan.hidden.map((h) => h.path), ...UNPLACEABLE].find((dir) => isUnder(target, dir));
  if (off !== undefined) throw new SandboxError(`cannot ${what} ${target}: it is under ${off}, which tasks do not see`);
}

/**
 * A tmpfs over `dir` that shows what `dir` holds (read-only binds and
 * symlinks, as the host's root is), so that new entries stay in the sandbox.
 */
function shadowDirectory(dir: string): MountOp[] {
  const args: MountOp[] = [{ kind: "tmpfs", path: dir }];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = posix.join(dir, entry.name);
    if (entry.isSymbolicLink()) args.push({ kind: "symlink", text: readlinkSync(path), path });
    else args.push({ kind: "bind", source: path, target: path, readOnly: true });
  }
  return args;
}

/** The directories troupe made for a task to write at paths of their own (TaskLaunch.mounts): made, and given to its user. */
export function writableMountSources(launch: TaskLaunch): string[] {
  return (launch.mounts ?? []).filter((m) => m.made === true && !m.readOnly).map((m) => m.source);
}
