/**
 * What the tasks' `credentials:` give them (OSMO's forms), decided from the
 * credentials they name (opened by the driver): `{NAME: {ENV_VAR: key}}` sets
 * ENV_VAR to the payload's `key`; `{NAME: /dir}` writes one file per payload
 * key into /dir (mode 0400, the task's user's). Every secret value of 8
 * characters or more of any credential the run uses is masked by the runtimes
 * in every task's log (a task may pass one on to another through a file):
 * all of a GENERIC credential's values; a DATA credential's keys, not its
 * endpoint, region or address (they are in the spec's URLs and the events);
 * a REGISTRY credential's `auth`.
 * Pure: an unknown credential or key is an error naming the task and the
 * credential, before anything runs.
 */
import { TroupeError } from "../errors/index.js";
import type { CompiledTask, CompiledWorkflow } from "../plan/index.js";
import type { CredentialInjection, TaskCredentials } from "../port/index.js";
import { maskableSecrets } from "../util/secret-mask.js";

export interface OpenedCredential {
  type: string;
  payload: Readonly<Record<string, string>>;
}

/** Only owner-readable: the files hold secrets. */
export const CREDENTIAL_FILE_MODE = 0o400;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The payload keys whose values are secrets, by type; GENERIC (and any other): all. */
const SECRET_KEYS: Readonly<Record<string, readonly string[]>> = {
  DATA: ["access_key_id", "access_key"],
  REGISTRY: ["auth", "password"],
};

/** The values of a credential that are secrets (masked in logs). */
export function secretValues(credential: OpenedCredential): string[] {
  const keys = SECRET_KEYS[credential.type];
  return Object.entries(credential.payload)
    .filter(([key]) => keys === undefined || keys.includes(key))
    .map(([, value]) => value);
}

/** What the credential checks read of a plan: its tasks' names and `credentials:` (a dry run sends only those). */
export interface CredentialUses {
  groups: ReadonlyArray<{ tasks: ReadonlyArray<Pick<CompiledTask, "name" | "credentials">> }>;
}

/** The tasks of `plan` that have `credentials:`, alone: what checkCredentialUse needs of it. */
export function credentialUsesOf(plan: CompiledWorkflow): CredentialUses {
  const tasks = plan.groups.flatMap((g) => g.tasks.filter((t) => Object.keys(t.credentials).length > 0));
  return { groups: [{ tasks: tasks.map(({ name, credentials }) => ({ name, credentials })) }] };
}

/** The credential names the plan's tasks use, each once. */
export function credentialNames(plan: CredentialUses): string[] {
  const names = new Set<string>();
  for (const group of plan.groups) for (const task of group.tasks) for (const name of Object.keys(task.credentials)) names.add(name);
  return [...names];
}

function refused(code: string, task: string, message: string, hint?: string): TroupeError {
  return new TroupeError(code, `task \`${task}\`: ${message}`, "usage", hint);
}

/**
 * Refuses the first use of a credential that cannot be given: a credential
 * that does not exist, a payload key it does not have, a variable name that
 * is not one, a directory that is not absolute, a key that cannot be a
 * file's name. `keysOf` says the payload keys of a credential that exists
 * (`troupe credential list` knows them without opening a payload).
 */
export function checkCredentialUse(plan: CredentialUses, keysOf: (name: string) => readonly string[] | undefined): void {
  for (const group of plan.groups)
    for (const task of group.tasks)
      for (const [name, use] of Object.entries(task.credentials)) {
        const keys = keysOf(name);
        if (keys === undefined)
          throw refused(
            "E_CREDENTIAL_UNKNOWN",
            task.name,
            `credential \`${name}\` does not exist`,
            `set it with \`troupe credential set ${name} --type generic --payload KEY=VALUE\` (\`troupe credential list\` shows those there are)`,
          );
        if (typeof use === "string") checkDirectory(task.name, name, use, keys);
        else
          for (const [variable, key] of Object.entries(use)) {
            if (!ENV_NAME.test(variable))
              throw refused("E_CREDENTIAL_ENV", task.name, `credential \`${name}\`: \`${variable}\` is not an environment variable name`);
            if (!keys.includes(key))
              throw refused(
                "E_CREDENTIAL_PAYLOAD_KEY",
                task.name,
                `credential \`${name}\` has no key \`${key}\` (for ${variable}); its keys: ${[...keys].sort().join(", ")}`,
              );
          }
      }
}

function checkDirectory(task: string, name: string, dir: string, keys: readonly string[]): void {
  if (!dir.startsWith("/"))
    throw refused(
      "E_CREDENTIAL_PATH",
      task,
      `credential \`${name}\`: \`${dir}\` is not an absolute directory`,
      "write the directory as /PATH",
    );
  // A key is one file's name: nothing that would lead out of the directory.
  const bad = keys.find((key) => key === "." || key === ".." || key.includes("/") || key.includes("\0"));
  if (bad !== undefined)
    throw refused("E_CREDENTIAL_PATH", task, `credential \`${name}\`: its key \`${bad}\` cannot be a file's name in ${dir}`);
}

/** The injections of every task with `credentials:`; `opened` has the credentials that exist, by name. Checked first (checkCredentialUse). */
export function taskCredentials(plan: CompiledWorkflow, opened: ReadonlyMap<string, OpenedCredential>): TaskCredentials {
  checkCredentialUse(plan, (name) => {
    const credential = opened.get(name);
    return credential && Object.keys(credential.payload);
  });
  const used = credentialNames(plan);
  const secrets = maskableSecrets(used.flatMap((name) => secretValues(opened.get(name)!)));
  const out = new Map<string, CredentialInjection>();
  for (const group of plan.groups)
    for (const task of group.tasks) {
      const entries = Object.entries(task.credentials);
      if (entries.length === 0) continue;
      const env: Record<string, string> = {};
      const files: Array<{ path: string; contents: Buffer; mode: number }> = [];
      for (const [name, use] of entries) {
        const { payload } = opened.get(name)!;
        if (typeof use === "string")
          for (const [key, value] of Object.entries(payload))
            files.push({ path: `${use.replace(/\/+$/, "")}/${key}`, contents: Buffer.from(value), mode: CREDENTIAL_FILE_MODE });
        else for (const [variable, key] of Object.entries(use)) env[variable] = payload[key]!;
      }
      out.set(task.name, { env, files, secrets });
    }
  return out;
}
