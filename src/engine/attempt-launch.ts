/** The launch of one task attempt of a run, from the run's state: where it runs, what it sees, its tokens resolved. */
import { attemptInputDir, OSMO_OUTPUT_PATH, osmoInputPath, storedOutputUrl } from "../model/index.js";
import type { CompiledInput, CompiledTask, CompiledWorkflow } from "../plan/index.js";
import type { PoolCapabilities, TaskCredentials, TaskLaunch, TaskMount } from "../port/index.js";
import { normalizeName, parseVolumeMount } from "../spec/index.js";
import type { GpuDevices } from "./gpu-devices.js";
import { checkpointPlaces, type AttemptDirs } from "./checkpoints.js";
import { buildLaunch } from "./launch.js";
import type { RunRecorder } from "./recorder.js";
import type { GroupState, Placements, TaskState } from "./run-state.js";

export interface RunView {
  runId: string;
  plan: CompiledWorkflow;
  groups: readonly GroupState[];
  tasks: ReadonlyArray<readonly TaskState[]>;
  gpuDevices: GpuDevices;
  recorder: RunRecorder;
  /** The run's data directory (outputs, inputs of their own). */
  dataDir: string;
  /** What tasks' `credentials:` give them (RunOptions.credentials). */
  credentials?: TaskCredentials;
  /** Other workflows' outputs that tasks take as inputs, by `WORKFLOW_ID:TASK` (RunOptions.foreignOutputs). */
  foreignOutputs: ReadonlyMap<string, string>;
  /** Those kept in a data store, their URLs (RunOptions.foreignStored). */
  foreignStored: ReadonlyMap<string, string>;
  /** The pool's data store (RunOptions.dataStore): outputs go up to it, task inputs come down from it. */
  dataStore?: string;
  /** Groups a restart took over from the run it restarts (RunOptions.reused): their outputs are where that run left them. */
  reusedGroups: ReadonlySet<number>;
  /** The pool's mounts for every task (RunOptions.defaultMounts). */
  defaultMounts: readonly string[];
  /** What a task sees of the file system: whether it can be given mounts, and where its data is. */
  taskView: Pick<PoolCapabilities, "mounts" | "dataPaths">;
}

/** The key of an attempt, unique within its run (TaskLaunch.key, the port's events). */
export function attemptKey(groupName: string, taskName: string, retryId: number): string {
  return `${groupName}/${taskName}/${retryId}`;
}

/** What the launches of a group's members are made from, once per placements object (they change together). */
interface GroupHosts {
  /** Addresses by task name as written (TaskLaunch.hosts). */
  addresses: Record<string, string>;
  /** What `{{host:TASK}}` becomes, by normalised task name. */
  tokens: ReadonlyMap<string, string>;
}
const groupHosts = new WeakMap<Placements, GroupHosts>();

/**
 * The launch of task t's attempt `retryId`, every token resolved from the
 * group's placements; throws when an input cannot be had.
 */
export function attemptLaunch(run: RunView, g: number, t: number, retryId: number, placements: Placements): TaskLaunch {
  const group = run.plan.groups[g]!;
  const task = group.tasks[t]!;
  const { addresses, tokens } = hostsOf(placements);
  const inputDirs = attemptInputDirs(run, task, retryId);
  const outputDir = run.tasks[g]![t]!.outputDir;
  const seen = taskDataPaths(run, task.inputs, outputDir, inputDirs);
  const launch = buildLaunch(
    task,
    {
      key: attemptKey(group.name, task.name, retryId),
      groupName: group.name,
      retryId,
      address: addresses[task.name] ?? "",
      hosts: addresses,
      // Where the pool has GPUs, a task that asked for none is given none (not "all": undefined).
      gpuDevices: run.gpuDevices.count > 0 ? (run.groups[g]!.gpus?.[t] ?? []) : undefined,
      logPath: run.recorder.logPath(run.runId, group.name, task.name, retryId),
      outputDir,
      inputDirs,
      mounts: seen.mounts,
    },
    { workflowId: run.runId, outputDir: seen.outputDir, inputDirs: seen.inputDirs, hosts: tokens },
  );
  const added = addedMounts(run, task, launch);
  if (added.length > 0) launch.mounts = [...(launch.mounts ?? []), ...added];
  return withCredentials(run, task.name, Object.keys(task.credentials).length > 0, launch);
}

/**
 * The mounts attempt `retryId` of task t will be shown (its launch's `mounts`), before it is placed: for pools
 * that make a member's sandbox as they place it (MemberRef.mounts). The same as its launch's but for a
 * checkpoint path naming `{{host:X}}`, unknown before placement (the pool says so when the launch comes).
 * Throws when an input cannot be had, as attemptLaunch does.
 */
export function placementMounts(run: RunView, g: number, t: number, retryId: number, outputDir: string): TaskMount[] {
  const task = run.plan.groups[g]!.tasks[t]!;
  const inputDirs = attemptInputDirs(run, task, retryId);
  const seen = taskDataPaths(run, task.inputs, outputDir, inputDirs);
  return [...seen.mounts, ...addedMounts(run, task, { outputDir, inputDirs, hosts: {}, retryId })];
}

/** The pool's and the task's volume mounts, and the checkpoint directories outside the output (checkpoints.ts). */
function addedMounts(run: RunView, task: CompiledTask, launch: AttemptDirs): TaskMount[] {
  const checkpointMounts = checkpointPlaces(run, task, launch).flatMap((place) => (place.mount ? [place.mount] : []));
  return [...volumeMounts(run, task), ...checkpointMounts];
}

/** The directories of attempt `retryId` of `task` that its inputs are, by position. */
function attemptInputDirs(run: RunView, task: CompiledTask, retryId: number): string[] {
  return task.inputs.map((input, i) => {
    // What comes from a store (url:, a data store's outputs) is downloaded, a filtered input linked, into a
    // directory of the attempt's own (attempt-data.ts).
    const own = attemptInputDir(run.dataDir, task.name, retryId, i);
    if (input.kind === "workflow-task") {
      if (storedForeignUrl(run, input) !== undefined) return own;
      const dir = run.foreignOutputs.get(`${input.workflowId}:${input.task}`);
      if (dir === undefined)
        throw new Error(`input ${input.workflowId}:${input.task}: that workflow's output was not found before the run`);
      return dir;
    }
    if (input.kind === "url" || input.regex !== undefined || storedUpstreamUrl(run, input) !== undefined) return own;
    return upstreamOutputDir(run, input);
  });
}

/**
 * Where the task sees its output and inputs (what its tokens become), and the
 * mounts that show them there: OSMO's /osmo/data paths where the pool's
 * runtime has them (an input from a task also by that task's name), the
 * directories' own paths elsewhere.
 */
function taskDataPaths(
  run: RunView,
  inputs: readonly CompiledInput[],
  outputDir: string,
  inputDirs: readonly string[],
): { outputDir: string; inputDirs: readonly string[]; mounts: TaskMount[] } {
  if (run.taskView.dataPaths !== "osmo") return { outputDir, inputDirs, mounts: [] };
  const mounts: TaskMount[] = [{ source: outputDir, target: OSMO_OUTPUT_PATH, readOnly: false }];
  const targets = new Set<string>();
  inputDirs.forEach((source, i) => {
    mounts.push({ source, target: osmoInputPath(i), readOnly: true });
    targets.add(osmoInputPath(i));
  });
  inputs.forEach((input, i) => {
    const byName = input.kind === "task" ? osmoInputPath(input.task) : undefined;
    if (byName === undefined || targets.has(byName)) return;
    targets.add(byName);
    mounts.push({ source: inputDirs[i]!, target: byName, readOnly: true });
  });
  return { outputDir: OSMO_OUTPUT_PATH, inputDirs: inputDirs.map((_, i) => osmoInputPath(i)), mounts };
}

/**
 * The host paths the pool shows every task, and those the task's
 * `volumeMounts` ask for (the pool allowed them: plan/pool-policy.ts). A
 * runtime without mounts shows a task the host's paths as they are: there a
 * mount at its own path is no mount at all, and one elsewhere cannot be had.
 */
function volumeMounts(run: RunView, task: CompiledTask): TaskMount[] {
  const mounts = [...run.defaultMounts, ...task.volumeMounts].map(parseVolumeMount);
  if (run.taskView.mounts) return mounts.map(({ source, target }) => ({ source, target, readOnly: false }));
  const moved = mounts.find((m) => m.source !== m.target);
  if (moved)
    throw new Error(
      `the volume mount ${moved.source}:${moved.target} needs a sandbox to show ${moved.source} at ${moved.target}, and this pool's tasks run without one (they see the host's paths as they are)`,
    );
  return [];
}

/** The launch with what its task's `credentials:` give it; every launch of a run with credentials masks their secrets. */
function withCredentials(run: RunView, taskName: string, asks: boolean, launch: TaskLaunch): TaskLaunch {
  const given = run.credentials?.get(taskName);
  if (asks && !given)
    throw new Error(
      `\`credentials:\` of task ${taskName} cannot be given here: its run was given no credentials (\`troupe run\`, \`troupe restart\` and a server's runs open their owner's)`,
    );
  const secrets = given?.secrets ?? runSecrets(run.credentials);
  if (!given) return secrets.length > 0 ? { ...launch, secrets } : launch;
  return {
    ...launch,
    env: { ...launch.env, ...given.env },
    files: [...launch.files, ...given.files.map((f) => ({ ...f }))],
    secrets,
  };
}

/** The secrets of a run's credentials (every task's injection carries all of them). */
export function runSecrets(credentials: TaskCredentials | undefined): readonly string[] {
  if (!credentials) return [];
  for (const injection of credentials.values()) return injection.secrets;
  return [];
}

/** The output directory of the upstream task a task input names. */
export function upstreamOutputDir(run: RunView, input: Extract<CompiledInput, { kind: "task" }>): string {
  return upstreamOf(run, input).state.outputDir;
}

function upstreamOf(run: RunView, input: Extract<CompiledInput, { kind: "task" }>): { name: string; state: TaskState } {
  const upstream = run.plan.groups[input.group]!;
  const index = upstream.tasks.findIndex((u) => normalizeName(u.name) === normalizeName(input.task));
  return { name: upstream.tasks[index]!.name, state: run.tasks[input.group]![index]! };
}

/**
 * Where the run's data store keeps the output a task input names (its upstream's last attempt), or undefined
 * without a store. A group a restart took over from an earlier run is read where that run left it, on disk.
 */
export function storedUpstreamUrl(run: RunView, input: Extract<CompiledInput, { kind: "task" }>): string | undefined {
  if (run.dataStore === undefined || run.reusedGroups.has(input.group)) return undefined;
  const { name, state } = upstreamOf(run, input);
  return storedOutputUrl(run.dataStore, run.runId, name, state.retryId);
}

/** Where another workflow's output a task input names is kept in a store, when it is to be downloaded from there. */
export function storedForeignUrl(run: RunView, input: Extract<CompiledInput, { kind: "workflow-task" }>): string | undefined {
  const key = `${input.workflowId}:${input.task}`;
  const url = run.foreignStored.get(key);
  return url !== undefined && (run.dataStore !== undefined || !run.foreignOutputs.has(key)) ? url : undefined;
}

function hostsOf(placements: Placements): GroupHosts {
  let hosts = groupHosts.get(placements);
  if (!hosts) {
    const entries = Object.entries(placements);
    hosts = {
      addresses: Object.fromEntries(entries.map(([name, p]) => [name, p.address])),
      tokens: new Map(entries.map(([name, p]) => [normalizeName(name), p.hostName])),
    };
    groupHosts.set(placements, hosts);
  }
  return hosts;
}
