/**
 * The exit policy as tables: each row an outcome the runtime reported, the
 * task's rules, and what the run must do (exit-policy.ts). Pure: no run, no
 * runtime.
 */
import { describe, expect, it } from "vitest";
import { decideExit, groupEndingFor, type ExitRules } from "../../src/engine/exit-policy.js";
import { compileExitActions, type CompiledGroup, type CompiledTask } from "../../src/plan/index.js";
import type { MemberOutcome } from "../../src/port/index.js";

const rules = (over: Partial<ExitRules> & { actions?: Record<string, string>; pool?: Record<string, string> } = {}): ExitRules => ({
  exitActions: compileExitActions(over.actions),
  poolExitActions: compileExitActions(over.pool),
  retryId: over.retryId ?? 0,
  maxRetries: over.maxRetries ?? 0,
  started: over.started ?? true,
});

type Row = [string, MemberOutcome, ExitRules, { kind: string; status?: string; exitCode?: number | null; reason: RegExp }];

const rows: Row[] = [
  ["exit 0 completes", { kind: "exited", code: 0 }, rules(), { kind: "finish", status: "COMPLETED", exitCode: 0, reason: /^exited with 0$/ }],
  ["exit 1 fails", { kind: "exited", code: 1 }, rules(), { kind: "finish", status: "FAILED", exitCode: 1, reason: /^exited with 1$/ }],
  ["the runtime's reason is kept", { kind: "exited", code: 137, reason: "killed: out of memory" }, rules(), { kind: "finish", status: "FAILED", exitCode: 137, reason: /137 \(killed: out of memory\)/ }],
  ["a FAIL rule fails an exit 0", { kind: "exited", code: 0 }, rules({ actions: { FAIL: "0" } }), { kind: "finish", status: "FAILED", exitCode: 0, reason: /exited with 0/ }],
  ["a COMPLETE rule completes exit 3", { kind: "exited", code: 3 }, rules({ actions: { COMPLETE: "1-5" } }), { kind: "finish", status: "COMPLETED", exitCode: 3, reason: /exited with 3/ }],
  ["the pool's rule applies where the task has none", { kind: "exited", code: 7 }, rules({ pool: { COMPLETE: "7" } }), { kind: "finish", status: "COMPLETED", exitCode: 7, reason: /exited with 7/ }],
  ["the task's rule wins over the pool's", { kind: "exited", code: 7 }, rules({ actions: { FAIL: "7" }, pool: { COMPLETE: "7" } }), { kind: "finish", status: "FAILED", exitCode: 7, reason: /exited with 7/ }],
  ["RESCHEDULE with a retry left", { kind: "exited", code: 2 }, rules({ actions: { RESCHEDULE: "2" }, maxRetries: 2 }), { kind: "reschedule", exitCode: 2, reason: /RESCHEDULE \(retry 1 of 2\)/ }],
  ["RESCHEDULE on the last retry fails", { kind: "exited", code: 2 }, rules({ actions: { RESCHEDULE: "2" }, retryId: 2, maxRetries: 2 }), { kind: "finish", status: "FAILED", exitCode: 2, reason: /no retries are left \(limit 2\)/ }],
  ["lost: FAILED_SERVER_ERROR, 3002", { kind: "lost", message: "gone" }, rules(), { kind: "finish", status: "FAILED_SERVER_ERROR", exitCode: 3002, reason: /^how it ended is unknown: gone$/ }],
  ["a failure to start before the sandbox came up says so", { kind: "start-failed", message: "no sandbox" }, rules({ started: false }), { kind: "finish", status: "FAILED_START_ERROR", exitCode: 3003, reason: /^could not start: no sandbox$/ }],
  ["a command that could not start after the release", { kind: "start-failed", message: "exec failed" }, rules(), { kind: "finish", status: "FAILED_START_ERROR", exitCode: 3003, reason: /^exec failed$/ }],
  ["image pull: FAILED_IMAGE_PULL", { kind: "image-pull", message: "manifest unknown" }, rules({ started: false }), { kind: "finish", status: "FAILED_IMAGE_PULL", exitCode: 3003, reason: /could not start: manifest unknown/ }],
  ["backend error: FAILED_BACKEND_ERROR, 3001", { kind: "backend-error", message: "node n2 lost" }, rules(), { kind: "finish", status: "FAILED_BACKEND_ERROR", exitCode: 3001, reason: /node n2 lost/ }],
  ["evicted: FAILED_EVICTED, 3004", { kind: "evicted", message: "memory pressure" }, rules({ maxRetries: 3 }), { kind: "finish", status: "FAILED_EVICTED", exitCode: 3004, reason: /^evicted: memory pressure$/ }],
  ["evicted, whatever the task's rules say of user codes", { kind: "evicted", message: "drain" }, rules({ actions: { RESCHEDULE: "0-255" }, maxRetries: 1 }), { kind: "finish", status: "FAILED_EVICTED", exitCode: 3004, reason: /^evicted: drain$/ }],
  ["preempted: rescheduled by default, as in OSMO", { kind: "preempted", message: "by a higher priority" }, rules({ maxRetries: 1 }), { kind: "reschedule", exitCode: 3006, reason: /preempted: by a higher priority: RESCHEDULE/ }],
  ["preempted without retries left: FAILED_PREEMPTED, 3006", { kind: "preempted", message: "again" }, rules({ maxRetries: 0 }), { kind: "finish", status: "FAILED_PREEMPTED", exitCode: 3006, reason: /no retries are left \(limit 0\)/ }],
  ["preempted on the second retry of two", { kind: "preempted", message: "x" }, rules({ retryId: 1, maxRetries: 2 }), { kind: "reschedule", exitCode: 3006, reason: /^preempted: x: RESCHEDULE \(retry 2 of 2\)$/ }],
  ["start timeout: FAILED_START_TIMEOUT, 3005", { kind: "start-timeout", message: "not ready in 600s" }, rules({ maxRetries: 3 }), { kind: "finish", status: "FAILED_START_TIMEOUT", exitCode: 3005, reason: /did not start in time: not ready in 600s/ }],
];

describe("decideExit", () => {
  it.each(rows)("%s", (_name, outcome, given, expected) => {
    const decision = decideExit(outcome, given);
    expect(decision.kind).toBe(expected.kind);
    expect(decision.reason).toMatch(expected.reason);
    expect(decision.exitCode).toBe(expected.exitCode);
    if (decision.kind === "finish") expect(decision.status).toBe(expected.status);
  });
});

const task = (name: string, lead = false) => ({ name, lead }) as CompiledTask;
const group = (ignoreNonleadStatus: boolean) => ({ ignoreNonleadStatus }) as CompiledGroup;

describe("groupEndingFor", () => {
  it.each([
    ["the lead completes: the group completes, siblings COMPLETED", group(true), task("l", true), "COMPLETED", { status: "COMPLETED", taskStatus: "COMPLETED", taskReason: "lead task finished" }],
    ["the lead fails in any way: the group takes its status, siblings FAILED", group(true), task("l", true), "FAILED_EVICTED", { status: "FAILED_EVICTED", taskStatus: "FAILED", taskReason: "lead task finished" }],
    ["a non-lead fails, ignoreNonleadStatus true: the group goes on", group(true), task("w"), "FAILED", undefined],
    ["a non-lead fails, ignoreNonleadStatus false: the group fails", group(false), task("w"), "FAILED_PREEMPTED", { status: "FAILED", taskStatus: "FAILED", taskReason: "group failed: w failed" }],
    ["a non-lead completes: the group goes on", group(false), task("w"), "COMPLETED", undefined],
  ] as const)("%s", (_name, g, t, status, expected) => {
    const ending = groupEndingFor(g, t, status);
    if (expected === undefined) expect(ending).toBeUndefined();
    else expect(ending).toMatchObject(expected);
  });
});
