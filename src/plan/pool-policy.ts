/**
 * What a pool allows a workflow to ask for, beyond capacity (OSMO's platform
 * settings): `privileged: true` runs a task as root with root's capabilities,
 * so it runs only where the pool says `privileged_allowed`; `volumeMounts`
 * show a task host paths, so only those under the pool's `allowed_mounts`.
 * (The pool's `default_mounts` every task gets go to the engine: RunOptions.)
 */
import { parseVolumeMount } from "../spec/index.js";
import type { CompiledWorkflow, TokenizedText } from "./types.js";

export interface PoolPolicy {
  privilegedAllowed: boolean;
  /** Tasks with `hostNetwork: true` may run on the machine's own network (absent: refused). */
  hostNetworkAllowed?: boolean;
  /** Host paths (and everything under them) that tasks' `volumeMounts` may show them. */
  allowedMounts: readonly string[];
}

/** Whether `path` is one of `allowed` or under one. */
export function mountAllowed(path: string, allowed: readonly string[]): boolean {
  return allowed.some((dir) => path === dir || path.startsWith(dir.endsWith("/") ? dir : `${dir}/`));
}

/** Why the pool refuses this workflow, one line per thing a task asks for that it does not allow; empty when it does not. */
export function policyRefusals(plan: CompiledWorkflow, policy: PoolPolicy, poolName: string): string[] {
  const refusals: string[] = [];
  for (const task of plan.groups.flatMap((g) => g.tasks)) {
    if (task.privileged && !policy.privilegedAllowed)
      refusals.push(
        `task ${task.name} asks for privileged: true, which the pool ${poolName} does not allow ` +
          `(its tasks run unprivileged; an administrator may allow it: privileged_allowed in the pool's config, --allow-privileged for troupe run)`,
      );
    if (task.hostNetwork && policy.hostNetworkAllowed !== true)
      refusals.push(
        `task ${task.name} asks for hostNetwork: true, which the pool ${poolName} does not allow ` +
          `(its tasks get networks of their own; an administrator may allow it: host_network_allowed in the pool's config, --allow-host-network for troupe run)`,
      );
    for (const mount of task.volumeMounts) {
      const { source } = parseVolumeMount(mount);
      if (mountAllowed(source, policy.allowedMounts)) continue;
      const allowed = policy.allowedMounts.length > 0 ? `it allows ${policy.allowedMounts.join(", ")}` : "it allows none";
      refusals.push(
        `task ${task.name} asks for the volume mount ${mount}, whose host path the pool ${poolName} does not allow (${allowed}; ` +
          `an administrator may allow it: allowed_mounts in the pool's config, --allow-mount ${source} for troupe run)`,
      );
    }
  }
  return refusals;
}

/**
 * Why the pool's runtime cannot run this workflow's `hostNetwork: true` tasks (it cannot put a task on the
 * machine's own network: PoolCapabilities.hostNetwork), or undefined. `where`: the runtime as the message names it.
 */
export function hostNetworkRefusal(plan: CompiledWorkflow, canHostNetwork: boolean, where: string): string | undefined {
  if (canHostNetwork) return undefined;
  const task = plan.groups.flatMap((g) => g.tasks).find((t) => t.hostNetwork);
  return task
    ? `task ${task.name} asks for hostNetwork: true, which ${where} cannot give (the host runtime and podman containers can)`
    : undefined;
}

/**
 * Why a runtime whose tasks get no data (PoolCapabilities.taskData false) cannot run this workflow: a task that
 * takes inputs, has `url:` outputs or checkpoints, or names `{{output}}` or `{{input}}` anywhere would find nothing
 * there (refused before the run rather than failing, or losing its output, in the pod).
 */
export function taskDataRefusal(plan: CompiledWorkflow, taskData: boolean, where: string): string | undefined {
  if (taskData) return undefined;
  const namesData = (text: TokenizedText) =>
    text.some((part) => typeof part !== "string" && (part.kind === "output" || part.kind === "input"));
  for (const task of plan.groups.flatMap((g) => g.tasks)) {
    const texts = [
      ...task.command,
      ...task.args,
      ...Object.values(task.environment),
      ...task.files.flatMap((f) => (f.source.kind === "text" ? [f.source.contents] : [])),
    ];
    const why =
      task.inputs.length > 0
        ? "takes inputs"
        : task.outputs.length > 0
          ? "has url: outputs"
          : task.checkpoints.length > 0
            ? "has checkpoints"
            : texts.some(namesData)
              ? "names {{output}} or {{input}}"
              : undefined;
    if (why)
      return `task ${task.name} ${why}, and ${where} brings no data into its tasks yet (their {{output}} and {{input}} directories do not exist there): run it on the host, container or slurm runtime, or give the Kubernetes pool a data volume (data_volume, --data-volume)`;
  }
  return undefined;
}

/**
 * Why the pool cannot run this workflow as to where its tasks go: a resource names a platform the pool does
 * not have. `platforms`: the pool's (PoolCapabilities.platforms); undefined where it has none, and then
 * `platform:` is one of the fields it does not act on (warned at validation).
 */
export function platformRefusal(plan: CompiledWorkflow, platforms: readonly string[] | undefined, where: string): string | undefined {
  if (platforms === undefined) return undefined;
  for (const task of plan.groups.flatMap((g) => g.tasks)) {
    const platform = task.resources.platform;
    if (platform !== undefined && !platforms.includes(platform))
      return `task ${task.name}'s resource ${task.resources.name} names platform ${platform}, which ${where} does not have (it has: ${platforms.join(", ") || "none"})`;
  }
  return undefined;
}

/** Whether a pool's tasks can pass data: they share troupe's disk, or the pool names a data store. */
export interface DataSharing {
  sharedFileSystem: boolean;
  dataStore?: string;
}

/**
 * Why the pool cannot run this workflow as its tasks pass data (a task input from another task, of this
 * workflow or another): its tasks share no disk with troupe (a Kubernetes pool's pods) and it names no data
 * store to pass it through. Undefined when it can. `where`: the pool as the message names it ("the pool gpu").
 */
export function dataStoreRefusal(plan: CompiledWorkflow, pool: DataSharing, where: string, howToName: string): string | undefined {
  if (pool.sharedFileSystem || pool.dataStore !== undefined) return undefined;
  for (const task of plan.groups.flatMap((g) => g.tasks)) {
    const input = task.inputs.find((i) => i.kind === "task" || i.kind === "workflow-task");
    if (!input) continue;
    const from = input.kind === "task" ? input.task : input.kind === "workflow-task" ? `${input.workflowId}:${input.task}` : "";
    return (
      `task ${task.name} takes the output of ${from} as an input, and the tasks of ${where} share no disk with troupe: ` +
      `outputs pass between them only through a data store, which ${where} does not name (${howToName})`
    );
  }
  return undefined;
}
