/**
 * The sandbox of one task attempt: its own PID, mount, UTS and IPC namespaces
 * (and network namespace in netns mode), a private /tmp, `files:` at their
 * paths, inputs read-only, a hosts file naming the group's members, and
 * nothing of the host's environment but what is passed on. One spec, built
 * by troupe-spawner's own sandbox as root (native/sandbox.c, fast) or by
 * bubblewrap (unprivileged, or without the spawner).
 */
import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { posix } from "node:path";
import type { TaskLaunch } from "../types.js";

export interface SandboxPlan {
  /** Host directory for this attempt's staged files. */
  dir: string;
  /** The run's data directory (outputs, logs, sandboxes): always visible to the task. */
  runDir: string;
  /**
   * Built by troupe's own sandbox (native/sandbox.c), which makes the output
   * directory and places the hosts file from its text itself; bwrap is given
   * both ready-made (the output directory made, the hosts file staged).
   */
  ownSandbox: boolean;
  hostsFile: string;
  /** Staged copy of each `files:` entry, by index. */
  stagedFiles: string[];
  netns: boolean;
  /** Not root: bwrap needs a user namespace to do the rest. */
  userNamespace: boolean;
  env: Record<string, string>;
}

/** File descriptors the sandbox talks on (bwrap's and troupe's own): status JSON out, barrier in. */
export const STATUS_FD = 3;
export const BLOCK_FD = 4;

export class SandboxError extends Error {}

/** What is laid over the host's root, in order. */
export type MountOp =
  | { kind: "tmpfs"; path: string }
  | { kind: "bind"; source: string; target: string; readOnly: boolean }
  | { kind: "symlink"; text: string; path: string }
  | { kind: "proc"; path: string }
  /** A read-only file with these contents (troupe's own sandbox only: bwrap gets staged files). */
  | { kind: "data"; contents: string; target: string };

/** One task attempt's sandbox, whichever tool builds it. */
export interface SandboxSpec {
  hostname: string;
  netns: boolean;
  userNamespace: boolean;
  /** Host directories to make before anything else (troupe's own sandbox makes them itself). */
  makeDirs: string[];
  mounts: MountOp[];
  cwd: string;
  env: Record<string, string>;
  argv: string[];
}

export function sandboxSpec(launch: TaskLaunch, plan: SandboxPlan): SandboxSpec {
  const mounts: MountOp[] = [
    { kind: "proc", path: "/proc" },
    { kind: "tmpfs", path: "/tmp" },
  ];
  // The run's own directory may live under /tmp: bind it back over the private /tmp.
  if (isUnder(plan.runDir, "/tmp")) mounts.push({ kind: "bind", source: plan.runDir, target: plan.runDir, readOnly: false });
  mounts.push(...fileMounts(launch, plan));
  for (const input of launch.inputDirs) mounts.push({ kind: "bind", source: input, target: input, readOnly: true });
  mounts.push(
    plan.ownSandbox
      ? { kind: "data", contents: hostsText(launch), target: "/etc/hosts" }
      : { kind: "bind", source: plan.hostsFile, target: "/etc/hosts", readOnly: true },
  );
  return {
    hostname: launch.taskName,
    netns: plan.netns,
    userNamespace: plan.userNamespace,
    makeDirs: plan.ownSandbox ? [launch.outputDir] : [],
    mounts,
    cwd: launch.outputDir,
    env: plan.env,
    argv: launch.argv,
  };
}

/** The bwrap command line (after `bwrap`): the whole host root, then the spec's mounts over it. */
export function bwrapArguments(spec: SandboxSpec): string[] {
  const args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-uts", "--unshare-ipc", "--hostname", spec.hostname];
  if (spec.userNamespace) args.push("--unshare-user", "--uid", "0", "--gid", "0");
  if (spec.netns) args.push("--unshare-net");
  args.push("--dev-bind", "/", "/");
  for (const op of spec.mounts) {
    if (op.kind === "tmpfs") args.push("--tmpfs", op.path);
    else if (op.kind === "proc") args.push("--proc", op.path);
    else if (op.kind === "symlink") args.push("--symlink", op.text, op.path);
    else if (op.kind === "data") throw new Error("bwrap is given staged files, not file contents");
    else args.push(op.readOnly ? "--ro-bind" : "--dev-bind", op.source, op.target);
  }
  args.push("--chdir", spec.cwd, "--clearenv");
  for (const [key, value] of Object.entries(spec.env)) args.push("--setenv", key, value);
  args.push("--json-status-fd", String(STATUS_FD), "--block-fd", String(BLOCK_FD), "--", ...spec.argv);
  return args;
}

/** The directives of troupe-spawner's own sandbox (native/sandbox.c), then `--` and the command. */
export function spawnerDirectives(spec: SandboxSpec): string[] {
  const fields = ["hostname", spec.hostname, "chdir", spec.cwd];
  if (spec.netns) fields.push("netns");
  for (const dir of spec.makeDirs) fields.push("mkdir", dir);
  for (const op of spec.mounts) {
    if (op.kind === "tmpfs" || op.kind === "proc") fields.push(op.kind, op.path);
    else if (op.kind === "symlink") fields.push("symlink", op.text, op.path);
    else if (op.kind === "data") fields.push("ro-data", op.contents, op.target);
    else fields.push(op.readOnly ? "ro-bind" : "bind", op.source, op.target);
  }
  for (const [key, value] of Object.entries(spec.env)) fields.push("env", `${key}=${value}`);
  fields.push("--", ...spec.argv);
  return fields;
}

function isUnder(path: string, dir: string): boolean {
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
  const args: MountOp[] = [];
  const shadowed = new Set<string>();
  launch.files.forEach((file, index) => {
    const target = posix.normalize(file.path);
    if (!isUnder(target, "/tmp") && !existsSync(target)) {
      let dir = posix.dirname(target);
      while (dir !== "/" && !existsSync(dir)) dir = posix.dirname(dir);
      if (dir === "/")
        throw new SandboxError(
          `cannot place ${target}: its top-level directory does not exist on this host (the host runtime cannot create directories at /)`,
        );
      if (![...shadowed].some((d) => isUnder(dir, d))) {
        args.push(...shadowDirectory(dir));
        shadowed.add(dir);
      }
    }
    args.push({ kind: "bind", source: plan.stagedFiles[index] as string, target, readOnly: false });
  });
  return args;
}

/** A tmpfs over `dir` that shows what `dir` holds (binds and symlinks), so that new entries stay in the sandbox. */
function shadowDirectory(dir: string): MountOp[] {
  const args: MountOp[] = [{ kind: "tmpfs", path: dir }];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = posix.join(dir, entry.name);
    if (entry.isSymbolicLink()) args.push({ kind: "symlink", text: readlinkSync(path), path });
    else args.push({ kind: "bind", source: path, target: path, readOnly: false });
  }
  return args;
}

export function hostsText(launch: TaskLaunch): string {
  const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const [name, address] of Object.entries(launch.hosts)) lines.push(`${address}\t${name}`);
  return lines.join("\n") + "\n";
}
