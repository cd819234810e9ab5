/**
 * `--set-env KEY=VALUE` (OSMO's): environment set in every task of a
 * workflow, over what the task's own `environment` says. Checked here once
 * for `troupe run`, `troupe workflow submit` and the server's API.
 */

import { tokenizeString } from "../spec/index.js";

/** An environment variable's name as a shell would take it: a letter or `_`, then letters, digits and `_`. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The most a submission may set (each is in every task's environment). */
export const MAX_SET_ENV = 256;

export type EnvCheck = { ok: true } | { ok: false; reason: string };

export function checkEnvName(name: string): EnvCheck {
  if (!ENV_NAME.test(name))
    return { ok: false, reason: `\`${name}\` is no environment variable name (a letter or _, then letters, digits or _)` };
  return { ok: true };
}

export function checkEnvValue(name: string, value: string): EnvCheck {
  // A NUL cannot be passed to a process's environment (and troupe-spawner's requests are NUL-separated).
  if (value.includes("\0")) return { ok: false, reason: `the value of ${name} has a NUL character` };
  // The spec's tokens are checked where the spec is validated (a {{host:X}} must name a task of the group): a value
  // given from outside it never passes there, so it may hold none.
  const token = tokenizeString(value).parts.find((part) => typeof part !== "string");
  if (token !== undefined)
    return {
      ok: false,
      reason: `the value of ${name} has a token (${value.match(/\{\{[^}]*\}\}/)?.[0] ?? "{{...}}"}); --set-env values are taken as they are`,
    };
  return { ok: true };
}

/** `KEY=VALUE` -> [KEY, VALUE], or why not. */
export function parseEnvAssignment(text: string): { ok: true; name: string; value: string } | { ok: false; reason: string } {
  const eq = text.indexOf("=");
  if (eq <= 0) return { ok: false, reason: `expected KEY=VALUE, got \`${text}\`` };
  const name = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const checked = checkEnvName(name);
  if (!checked.ok) return checked;
  const valueChecked = checkEnvValue(name, value);
  return valueChecked.ok ? { ok: true, name, value } : valueChecked;
}
