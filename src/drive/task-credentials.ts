/**
 * The tasks' `credentials:` of a run, opened from the credentials of whoever
 * runs it: this home's for `troupe run` and `troupe restart`, the submitting
 * user's for a server's runs (store.credentialsOf). What each task is given is
 * decided (data/task-credentials.ts) before the run is recorded (or resumed),
 * so that a name or key that does not exist is refused without anything
 * starting.
 */
import { checkCredentialUse, credentialNames, taskCredentials, type CredentialUses } from "../data/index.js";
import type { CompiledWorkflow } from "../plan/index.js";
import type { TaskCredentials } from "../port/index.js";
import type { CredentialTable, RunStore } from "../store/index.js";

/** The tasks' injections from `table`'s credentials (their payloads opened); undefined when no task has `credentials:`. */
export function openTaskCredentials(table: CredentialTable, plan: CompiledWorkflow): TaskCredentials | undefined {
  const names = credentialNames(plan);
  if (names.length === 0) return undefined;
  return taskCredentials(plan, table.named(names));
}

/**
 * The check of the same (names, keys, variable names, directories) from what
 * `troupe credential list` shows: no payload is opened, no credential key
 * needed (`troupe plan`; a server's submission).
 */
export function checkStoredCredentialUse(table: CredentialTable, plan: CredentialUses): void {
  if (credentialNames(plan).length === 0) return;
  const keys = new Map(table.list().map((c) => [c.name, c.keys]));
  checkCredentialUse(plan, (name) => keys.get(name));
}

/** `troupe run`'s and `troupe restart`'s: this home's credentials. */
export function homeTaskCredentials(store: RunStore, plan: CompiledWorkflow): TaskCredentials | undefined {
  return openTaskCredentials(store.credentials, plan);
}

/** `troupe plan`'s check against this home's credentials. */
export function checkHomeCredentialUse(store: RunStore, plan: CompiledWorkflow): void {
  checkStoredCredentialUse(store.credentials, plan);
}
