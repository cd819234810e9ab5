/**
 * The tasks' `credentials:` of a run driven from this home (`troupe run`,
 * `troupe restart`): the credentials they name opened from the home's
 * store, and what each task is given decided (data/task-credentials.ts)
 * before the run is recorded, so that a name or key that does not exist is
 * refused without anything starting.
 */
import { checkCredentialUse, credentialNames, taskCredentials } from "../data/index.js";
import type { CompiledWorkflow } from "../plan/index.js";
import type { TaskCredentials } from "../port/index.js";
import type { RunStore } from "../store/index.js";

export function homeTaskCredentials(store: RunStore, plan: CompiledWorkflow): TaskCredentials | undefined {
  const names = credentialNames(plan);
  if (names.length === 0) return undefined;
  return taskCredentials(plan, store.credentials.named(names));
}

/**
 * `troupe plan`'s check of the same (names, keys, variable names,
 * directories) from what `troupe credential list` shows: no payload is
 * opened, no credential key needed.
 */
export function checkHomeCredentialUse(store: RunStore, plan: CompiledWorkflow): void {
  if (credentialNames(plan).length === 0) return;
  const keys = new Map(store.credentials.list().map((c) => [c.name, c.keys]));
  checkCredentialUse(plan, (name) => keys.get(name));
}
