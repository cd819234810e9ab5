/**
 * How the chosen pool would place each group (where it knows: a cluster's
 * nodes), for `troupe plan` to show and for `troupe run` to refuse, before
 * anything is submitted, a group that could never be placed.
 */
import type { GroupPlacer } from "../drive/index.js";
import type { CompiledWorkflow } from "../plan/index.js";

export interface PlacedGroup {
  group: string;
  how: string;
  refusal?: string;
}

export function placeGroups(plan: CompiledWorkflow, placer: GroupPlacer): PlacedGroup[] {
  return plan.groups.map((group) => ({ group: group.name, ...placer(group.tasks.map((task) => task.resources)) }));
}

/** `E_UNPLACEABLE` lines for the groups that could never be placed. */
export function placementErrors(displayName: string, placed: readonly PlacedGroup[]): string[] {
  return placed
    .filter((p) => p.refusal !== undefined)
    .map((p) => `${displayName}: error E_UNPLACEABLE: group ${p.group} can never be placed: ${p.refusal}`);
}
