/** Exit-code -> action lookup, in OSMO's order: task rules, pool defaults, then 0 = COMPLETE. */
import { EXIT_ACTIONS, parseExitRanges, type ExitAction, type ExitActionsSpec } from "../spec/index.js";
import type { ExitActionRule } from "./types.js";

export function compileExitActions(spec: ExitActionsSpec | undefined): ExitActionRule[] {
  const rules: ExitActionRule[] = [];
  if (!spec) return rules;
  for (const action of EXIT_ACTIONS) {
    const value = spec[action];
    if (value === undefined) continue;
    const parsed = parseExitRanges(value);
    if (!parsed.ok) throw new Error(`exitActions.${action} was not validated: ${parsed.reason}`);
    for (const range of parsed.value) rules.push({ action, ...range });
  }
  return rules.sort((a, b) => a.from - b.from);
}

function lookup(rules: readonly ExitActionRule[], code: number): ExitAction | undefined {
  // Rules are few per task; a linear scan beats a binary search at this size.
  for (const rule of rules) if (code >= rule.from && code <= rule.to) return rule.action;
  return undefined;
}

export function exitActionFor(
  code: number,
  taskRules: readonly ExitActionRule[],
  poolDefaults: readonly ExitActionRule[] = [],
): ExitAction {
  return lookup(taskRules, code) ?? lookup(poolDefaults, code) ?? (code === 0 ? "COMPLETE" : "FAIL");
}
