/**
 * The host sandbox of a Slurm member, built on its node: the same sandbox the
 * host runtime builds (host/sandbox.ts), computed here on the login node and
 * sent to the member's helper whole, as bwrap's command line, or, where the
 * jobs run as root and the helper is troupe-slurm-helper, as the directives
 * of troupe's own sandbox, which the helper builds itself (native/sandbox.c,
 * as the host runtime's troupe-spawner does as root: no bwrap and no setpriv
 * to start on the node, most of a member's CPU there). The node's root
 * read-only, a private /tmp, troupe's home and the pool's own directory
 * hidden, the output writable, inputs read-only, `files:` staged on the
 * shared file system and bound at their paths, a hosts file, the command as
 * the pool's task user. What differs from the host runtime, and why:
 * - no network namespace: members talk through their node's address, which
 *   is what `{{host:X}}` is on Slurm;
 * - the host name stays the node's: a member is its node for its siblings
 *   (its `{{host:}}` is the node's address, shared with any member packed on
 *   the same node), so `hostname` names the machine whose address it is, and
 *   the hosts file maps it to that address (what MPI, NCCL or
 *   `MASTER_ADDR=$(hostname)` resolve), where a task's name would make two
 *   members on one node look like two machines;
 * - GPUs are Slurm's: the devices Slurm gave the step are bound where the
 *   node has them, and its GPU variables passed on as it set them.
 * The host paths the sandbox is computed from (what `files:` shadow, what
 * hides troupe's home) are read here: the nodes are taken to have the login
 * node's layout, as the shared file system has the same paths everywhere.
 */
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskLaunch } from "../types.js";
import { gpuDeviceNodes, type HiddenPath, sandboxSpec, type SandboxPlan, type TaskUser, writableMountSources } from "../host/sandbox.js";
import { bwrapArguments, spawnerDirectives } from "../host/sandbox-commands.js";
import { hostsText } from "../host/sandbox-names.js";
import { taskEnvironment } from "../host/task-environment.js";

/** Where the helper found itself, as its hello says. */
export interface NodePlace {
  /** The node's host name. */
  node: string;
  /** Slurm's GPU variables for the member's task (CUDA_VISIBLE_DEVICES, SLURM_STEP_GPUS, ...), those it set. */
  gpuEnv: Record<string, string>;
}

/** What every member's sandbox of a pool shares. */
export interface NodeSandboxSite {
  home: string;
  /** What is hidden (hiddenPaths of troupe's home and the pool's directory on the shared file system). */
  hidden: HiddenPath[];
  /** Jobs run as root (troupe's user is root here, and Slurm runs a job as its submitter): the command then becomes `taskUser`. */
  root: boolean;
  /** troupe-slurm-helper builds troupe's own sandbox: as root (it needs no user namespace), and not the Node.js helper. */
  ownSandbox: boolean;
  taskUser: TaskUser;
}

/** What the member's helper starts: bwrap's command line, or troupe's own sandbox's directives (`ownSandbox`). */
export interface NodeSandboxLaunch {
  sandbox: string[];
  ownSandbox: boolean;
}

/** Slurm's variables for the task's own GPUs that the command sees as Slurm set them (not its SLURM_* bookkeeping). */
const PASSED_GPU_VARIABLES = ["CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"];

/** Those of Slurm's GPU variables the command is given. */
export function passedGpuVariables(gpuEnv: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(gpuEnv).filter(([name]) => PASSED_GPU_VARIABLES.includes(name)));
}

/** The GPUs (the node's own indices) Slurm gave the step's task. */
export function stepGpus(gpuEnv: Record<string, string>): number[] {
  const list = gpuEnv.SLURM_STEP_GPUS ?? gpuEnv.SLURM_JOB_GPUS ?? gpuEnv.CUDA_VISIBLE_DEVICES ?? "";
  return list
    .split(",")
    .filter((index) => /^\d+$/.test(index))
    .map(Number);
}

/**
 * Stages the member's files (and for bwrap its hosts file) in `dir` (on the
 * shared file system), makes its output directory its user's (troupe's own
 * sandbox makes it on the node), and returns what the helper starts, with the
 * status channel on fd 3 and the barrier on fd 4.
 */
export function stageNodeSandbox(launch: TaskLaunch, place: NodePlace, dir: string, site: NodeSandboxSite): NodeSandboxLaunch {
  const user = site.root && !launch.privileged ? site.taskUser : undefined;
  const nodeDevices = gpuDeviceNodes(stepGpus(place.gpuEnv));
  // The GPUs' device nodes are bound where the node has them, which troupe's own sandbox does not probe (bwrap's --dev-bind-try).
  const own = site.ownSandbox && nodeDevices.length === 0;
  const staging = join(dir, "sandbox");
  if (!own || launch.files.length > 0) mkdirSync(staging, { recursive: true });
  if (!own)
    for (const dir of [launch.outputDir, ...writableMountSources(launch)]) {
      mkdirSync(dir, { recursive: true });
      if (user) chownSync(dir, user.uid, user.gid);
    }
  const hosts = { text: `${hostsText(launch, false)}${launch.address}\t${place.node}\n`, file: join(staging, "hosts") };
  const passed = passedGpuVariables(place.gpuEnv);
  const plan: SandboxPlan = {
    dir: staging,
    home: site.home,
    hidden: site.hidden,
    ownSandbox: own,
    hosts,
    stagedFiles: launch.files.map((_, i) => join(staging, `file.${i}`)),
    netns: false,
    userNamespace: !site.root,
    user,
    env: taskEnvironment(launch, user, passed),
    nodeDevices,
  };
  // Computed before anything is written: a file that cannot be placed fails the member with nothing staged.
  const spec = { ...sandboxSpec(launch, plan), hostname: place.node };
  const sandbox = own ? spawnerDirectives(spec) : ["bwrap", ...bwrapArguments(spec)];
  launch.files.forEach((file, i) => {
    const staged = plan.stagedFiles[i]!;
    writeFileSync(staged, file.contents, { mode: file.mode ?? 0o644 });
    // The task's own, to write as it likes: `files:` are the task's (a credential's, to read).
    if (user) chownSync(staged, user.uid, user.gid);
  });
  if (!own) writeFileSync(hosts.file, hosts.text);
  return { sandbox, ownSandbox: own };
}
