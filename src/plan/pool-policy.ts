/**
 * What a pool allows a workflow to ask for, beyond capacity (OSMO's platform
 * settings): `privileged: true` runs a task as root with root's capabilities,
 * so it runs only where the pool says `privileged_allowed`.
 */
import type { CompiledWorkflow } from "./types.js";

export interface PoolPolicy {
  privilegedAllowed: boolean;
}

/** Why the pool refuses this workflow, one line per task at fault; empty when it does not. */
export function policyRefusals(plan: CompiledWorkflow, policy: PoolPolicy, poolName: string): string[] {
  if (policy.privilegedAllowed) return [];
  return plan.groups.flatMap((g) =>
    g.tasks
      .filter((t) => t.privileged)
      .map(
        (t) =>
          `task ${t.name} asks for privileged: true, which the pool ${poolName} does not allow ` +
          `(its tasks run unprivileged; an administrator may allow it: privileged_allowed in the pool's config, --allow-privileged for troupe run)`,
      ),
  );
}
