/** The launch of one task attempt of a run, from the run's state: where it runs, what it sees, its tokens resolved. */
import { attemptInputDir } from "../model/index.js";
import type { CompiledInput, CompiledWorkflow } from "../plan/index.js";
import type { TaskCredentials, TaskLaunch } from "../port/index.js";
import { normalizeName } from "../spec/index.js";
import type { GpuDevices } from "./gpu-devices.js";
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
  const inputDirs = task.inputs.map((input, i) => {
    if (input.kind === "workflow-task")
      throw new Error(`input ${input.workflowId}:${input.task}: inputs from other workflows need the troupe server`);
    // A url: input is downloaded, a filtered one linked, into a directory of the attempt's own (attempt-data.ts).
    if (input.kind === "url" || input.regex !== undefined) return attemptInputDir(run.dataDir, task.name, retryId, i);
    return upstreamOutputDir(run, input);
  });
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
    },
    { workflowId: run.runId, outputDir: run.tasks[g]![t]!.outputDir, inputDirs, hosts: tokens },
  );
  return withCredentials(run, task.name, Object.keys(task.credentials).length > 0, launch);
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
  const upstream = run.plan.groups[input.group]!;
  const index = upstream.tasks.findIndex((u) => normalizeName(u.name) === normalizeName(input.task));
  return run.tasks[input.group]![index]!.outputDir;
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
