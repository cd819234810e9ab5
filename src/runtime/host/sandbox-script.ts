/**
 * The shell script that sets up one task's sandbox inside its namespaces and
 * then runs its command. It talks to troupe over fd 3 (a socket):
 *   -> "up"     sandbox mounted; waiting for the network (netns mode)
 *   <- "net"    network attached: configure it
 *   -> "ready"  everything in place; waiting at the barrier
 *   <- "go"     start the command
 *   -> "error <message>" setup failed (the script then exits 125)
 * It stays PID 1 of the task's PID namespace and forwards SIGTERM/SIGINT to
 * the command, so a graceful stop reaches it; when it exits, the kernel ends
 * every other process of the namespace.
 */
import { posix } from "node:path";
import type { TaskLaunch } from "../types.js";

export interface SandboxLayout {
  /** Host directory holding this attempt's staged files and scratch. */
  dir: string;
  /** The run's data directory (outputs, logs, sandboxes); stays visible to the task. */
  runDir: string;
  /** Working directory of the command (a host path). */
  workdir: string;
  /** Own mount namespace: private /tmp, files at their paths, read-only inputs, hosts file. */
  mountNamespace: boolean;
  /** `ip -batch` file to configure the network inside, in netns mode. */
  networkScript?: string;
  /** Environment the command starts from before the task's own variables. */
  baseEnv: Record<string, string>;
}

/** Single-quote for sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function stagedFile(layout: SandboxLayout, index: number): string {
  return posix.join(layout.dir, "files", String(index));
}

export function hostsFile(layout: SandboxLayout): string {
  return posix.join(layout.dir, "hosts");
}

export function sandboxScript(launch: TaskLaunch, layout: SandboxLayout): string {
  const q = shellQuote;
  const lines = ['fail() { echo "error $*" >&3; exit 125; }', "trap 'fail setup interrupted' TERM INT"];
  if (layout.mountNamespace) {
    // A private /tmp. If the run's own directory lives under /tmp, it is bound back in
    // from the old /tmp, still reachable through the working directory.
    lines.push("cd /tmp && mount -t tmpfs -o mode=1777 troupe-tmp /tmp || fail cannot mount a private /tmp");
    const runDir = posix.normalize(layout.runDir);
    if (runDir.startsWith("/tmp/")) {
      const rel = runDir.slice("/tmp/".length);
      lines.push(
        `mkdir -p ${q(`/tmp/${rel}`)} && mount --no-canonicalize --bind ${q(`./${rel}`)} ${q(`/tmp/${rel}`)} || fail cannot keep the run directory visible`,
      );
    }
    lines.push("cd / || fail cannot leave /tmp");
    // Overlays need an upper directory on a file system that supports them: a tmpfs of our own.
    lines.push(
      `mkdir -p ${q(posix.join(layout.dir, "ov"))} && mount -t tmpfs troupe-ov ${q(posix.join(layout.dir, "ov"))} || fail cannot mount scratch space`,
    );
    lines.push(...placeFiles(launch, layout));
    for (const input of launch.inputDirs) {
      lines.push(
        `mount --bind ${q(input)} ${q(input)} && mount -o remount,bind,ro ${q(input)} ${q(input)} || fail cannot mount input ${q(input)} read-only`,
      );
    }
    lines.push(`mount --bind ${q(hostsFile(layout))} /etc/hosts || fail cannot mount the hosts file`);
  }
  if (layout.networkScript) {
    lines.push("echo up >&3", "read -r step <&3 || exit 125", `ip -batch ${q(layout.networkScript)} || fail cannot configure the network`);
  }
  const env = { ...layout.baseEnv, ...launch.env };
  const envArgs = Object.entries(env)
    .map(([k, v]) => q(`${k}=${v}`))
    .join(" ");
  lines.push(
    "echo ready >&3",
    "read -r step <&3 || exit 125",
    "exec 3>&-",
    "trap - TERM INT",
    `cd ${q(layout.workdir)} || exit 125`,
    `env -i ${envArgs} "$@" &`,
    "child=$!",
    "trap 'kill -TERM $child 2>/dev/null' TERM",
    "trap 'kill -INT $child 2>/dev/null' INT",
    // wait returns early when a trapped signal arrives: wait again until the command is gone.
    "while :; do wait $child; rc=$?; kill -0 $child 2>/dev/null || break; done",
    "exit $rc",
  );
  return lines.join("\n") + "\n";
}

/**
 * `files:` at their absolute paths, seen only inside the task's mount namespace:
 * under /tmp they go on the private tmpfs; elsewhere the nearest existing
 * directory gets an overlay whose changes live in the sandbox.
 */
function placeFiles(launch: TaskLaunch, layout: SandboxLayout): string[] {
  const q = shellQuote;
  const lines: string[] = ['overlaid=" "'];
  launch.files.forEach((file, index) => {
    const target = posix.normalize(file.path);
    const parent = posix.dirname(target);
    if (target !== "/tmp" && !target.startsWith("/tmp/")) {
      // The nearest existing ancestor is found at run time; never the root itself.
      const overlay = posix.join(layout.dir, "ov", String(index));
      lines.push(
        `d=${q(parent)}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done`,
        `[ "$d" = / ] && fail cannot create ${q(target)}: its top-level directory does not exist on this host`,
        `case "$overlaid" in *" $d "*) ;; *) mkdir -p ${q(overlay)}/u ${q(overlay)}/w && mount -t overlay troupe-ov -o lowerdir="$d",upperdir=${q(overlay)}/u,workdir=${q(overlay)}/w "$d" || fail cannot overlay "$d"; overlaid="$overlaid$d ";; esac`,
      );
    }
    lines.push(`mkdir -p ${q(parent)} && cp ${q(stagedFile(layout, index))} ${q(target)} || fail cannot write ${q(target)}`);
  });
  return lines;
}
