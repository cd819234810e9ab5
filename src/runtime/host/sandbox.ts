/**
 * The bubblewrap (bwrap) command line for one task attempt: its own PID, mount
 * and UTS namespaces (and network namespace in netns mode), a private /tmp,
 * `files:` at their paths, inputs read-only, a hosts file naming the group's
 * members, and nothing of the host's environment but what is passed on.
 * bwrap does all of it in one process, with no shell and no mount(8) calls.
 */
import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { posix } from "node:path";
import type { TaskLaunch } from "../types.js";

export interface SandboxPlan {
  /** Host directory for this attempt's staged files. */
  dir: string;
  /** The run's data directory (outputs, logs, sandboxes): always visible to the task. */
  runDir: string;
  hostsFile: string;
  /** Staged copy of each `files:` entry, by index. */
  stagedFiles: string[];
  netns: boolean;
  /** Not root: bwrap needs a user namespace to do the rest. */
  userNamespace: boolean;
  env: Record<string, string>;
}

/** File descriptors bwrap talks on: status JSON out, barrier in. */
export const STATUS_FD = 3;
export const BLOCK_FD = 4;

export class SandboxError extends Error {}

export function bwrapArguments(launch: TaskLaunch, plan: SandboxPlan): string[] {
  const args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-uts", "--unshare-ipc", "--hostname", launch.taskName];
  if (plan.userNamespace) args.push("--unshare-user", "--uid", "0", "--gid", "0");
  if (plan.netns) args.push("--unshare-net");
  args.push("--dev-bind", "/", "/", "--proc", "/proc", "--tmpfs", "/tmp");
  // The run's own directory may live under /tmp: bind it back over the private /tmp.
  if (isUnder(plan.runDir, "/tmp")) args.push("--bind", plan.runDir, plan.runDir);
  args.push(...fileMounts(launch, plan));
  for (const input of launch.inputDirs) args.push("--ro-bind", input, input);
  args.push("--ro-bind", plan.hostsFile, "/etc/hosts");
  args.push("--chdir", launch.outputDir, "--clearenv");
  for (const [key, value] of Object.entries(plan.env)) args.push("--setenv", key, value);
  args.push("--json-status-fd", String(STATUS_FD), "--block-fd", String(BLOCK_FD), "--", ...launch.argv);
  return args;
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
function fileMounts(launch: TaskLaunch, plan: SandboxPlan): string[] {
  const args: string[] = [];
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
    args.push("--bind", plan.stagedFiles[index] as string, target);
  });
  return args;
}

/** A tmpfs over `dir` that shows what `dir` holds (binds and symlinks), so that new entries stay in the sandbox. */
function shadowDirectory(dir: string): string[] {
  const args = ["--tmpfs", dir];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = posix.join(dir, entry.name);
    if (entry.isSymbolicLink()) args.push("--symlink", readlinkSync(path), path);
    else args.push("--dev-bind", path, path);
  }
  return args;
}

export function hostsText(launch: TaskLaunch): string {
  const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const [name, address] of Object.entries(launch.hosts)) lines.push(`${address}\t${name}`);
  return lines.join("\n") + "\n";
}
