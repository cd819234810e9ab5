/** The launch of one task attempt of a run, from the run's state: where it runs, what it sees, its tokens resolved. */
import type { CompiledWorkflow } from "../plan/index.js";
import type { TaskLaunch } from "../runtime/index.js";
import { normalizeName } from "../spec/index.js";
import type { GpuDevices } from "./gpu-devices.js";
import { buildLaunch } from "./launch.js";
import type { RunRecorder } from "./recorder.js";
import type { GroupState, TaskState } from "./run-state.js";

export interface RunView {
  runId: string;
  plan: CompiledWorkflow;
  groups: readonly GroupState[];
  tasks: ReadonlyArray<readonly TaskState[]>;
  gpuDevices: GpuDevices;
  recorder: RunRecorder;
  /** The runtime's name of a member (`{{host:TASK}}`); without it, tokens are the addresses. */
  hostName?: (groupName: string, taskName: string, address: string) => string;
}

/** What `{{host:TASK}}` becomes in a group's members, once per map of the group's addresses. */
const hostTokens = new WeakMap<ReadonlyMap<string, string>, ReadonlyMap<string, string>>();

/** The launch of task t's attempt `retryId`, every token resolved; throws when an input cannot be had. */
export function attemptLaunch(run: RunView, g: number, t: number, retryId: number, hosts: ReadonlyMap<string, string>): TaskLaunch {
  const group = run.plan.groups[g]!;
  const task = group.tasks[t]!;
  const addresses = run.groups[g]!.addresses ?? {};
  const inputDirs = task.inputs.map((input) => {
    // Inputs from URLs or other workflows need a data service, which a local run does not have.
    if (input.kind === "url") throw new Error(`input ${input.url}: URL inputs need a data service, which troupe run does not have`);
    if (input.kind === "workflow-task")
      throw new Error(`input ${input.workflowId}:${input.task}: inputs from other workflows need the troupe server`);
    const upstream = run.plan.groups[input.group]!;
    const index = upstream.tasks.findIndex((u) => normalizeName(u.name) === normalizeName(input.task));
    return run.tasks[input.group]![index]!.outputDir;
  });
  return buildLaunch(
    task,
    {
      key: `${group.name}/${task.name}/${retryId}`,
      groupName: group.name,
      retryId,
      address: addresses[task.name] ?? "",
      hosts: addresses,
      // Where the pool has GPUs, a task that asked for none is given none (not "all": undefined).
      gpuDevices: run.gpuDevices.count > 0 ? (run.groups[g]!.gpus?.[t] ?? []) : undefined,
      logPath: run.recorder.logPath(run.runId, group.name, task.name, retryId),
    },
    { workflowId: run.runId, outputDir: run.tasks[g]![t]!.outputDir, inputDirs, hosts: hostTokensOf(run, g, hosts) },
  );
}

/** The runtime's name of each member (by normalised task name), or its address where the runtime has no names. */
function hostTokensOf(run: RunView, g: number, hosts: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  const hostName = run.hostName;
  if (!hostName) return hosts;
  let tokens = hostTokens.get(hosts);
  if (!tokens) {
    const group = run.plan.groups[g]!;
    tokens = new Map(
      group.tasks.map((task) => {
        const key = normalizeName(task.name);
        return [key, hostName(group.name, task.name, hosts.get(key) ?? "")];
      }),
    );
    hostTokens.set(hosts, tokens);
  }
  return tokens;
}
