/**
 * What a pool allows a workflow to ask for, beyond capacity (OSMO's platform
 * settings): `privileged: true` runs a task as root with root's capabilities,
 * so it runs only where the pool says `privileged_allowed`; `volumeMounts`
 * show a task host paths, so only those under the pool's `allowed_mounts`.
 * (The pool's `default_mounts` every task gets go to the engine: RunOptions.)
 */
import { parseVolumeMount } from "../spec/index.js";
import type { CompiledWorkflow } from "./types.js";

export interface PoolPolicy {
  privilegedAllowed: boolean;
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
