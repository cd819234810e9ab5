/**
 * A focused scheduling pass (scheduling-focus.ts) decides exactly what a pass
 * over every group decides, and looks at only the groups that may have
 * something to do: with 10,000 groups waiting for two slots, a pass after one
 * exit reads a handful of them, not all (the run was quadratic in its size).
 */
import { describe, expect, it } from "vitest";
import { schedule, type Capacity, type GroupSnapshot, type SchedulerInput } from "../../src/engine/index.js";
import { SchedulingFocus } from "../../src/engine/scheduling-focus.js";
import type { GroupStatus } from "../../src/engine/index.js";
import type { CompiledWorkflow } from "../../src/plan/index.js";
import { compileYaml } from "./plan-helpers.js";

const GiB = 1024 ** 3;

function focusOf(plan: CompiledWorkflow, groups: GroupSnapshot[]): NonNullable<SchedulerInput["focus"]> {
  const focus = new SchedulingFocus(plan, (g) => groups[g]!.status);
  focus.rebuild();
  return {
    waiting: focus.takeWaiting(),
    running: focus.running,
    schedulingFrom: focus.schedulingFrom,
    schedulingCount: focus.schedulingCount,
  };
}

/** A deterministic pseudo-random sequence (the cases are the same on every run). */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

const STATUSES: GroupStatus[] = ["WAITING", "SCHEDULING", "INITIALIZING", "RUNNING", "COMPLETED", "FAILED", "FAILED_UPSTREAM"];

/** Groups of 1-3 tasks with random cpu demands, each reading from up to two earlier groups; timeouts sometimes. */
function randomYaml(next: () => number, groups: number, timeouts: boolean): string {
  const lines = ["workflow:", "  name: focus"];
  if (timeouts) lines.push("  timeout: {queue_timeout: 5s, exec_timeout: 9s}");
  lines.push("  resources:", "    small: {cpu: 1, memory: 1Gi}", "    big: {cpu: 3, memory: 1Gi}", "  groups:");
  for (let g = 0; g < groups; g++) {
    lines.push(`  - name: g${g}`, "    tasks:");
    const size = 1 + Math.floor(next() * 3);
    for (let t = 0; t < size; t++) {
      const inputs = g > 0 && t === 0 ? [...new Set([0, 1].map(() => Math.floor(next() * g)))].slice(0, 1 + Math.floor(next() * 2)) : [];
      const from = inputs.map((u) => `{task: g${u}t0}`).join(", ");
      const resource = next() < 0.2 ? "big" : "small";
      lines.push(
        `      - {name: g${g}t${t}, image: alpine, command: ["true"], resource: ${resource}${from ? `, inputs: [${from}]` : ""}${t === 0 ? ", lead: true" : ""}}`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

describe("a focused pass decides what a full pass decides", () => {
  it("on 300 random plans and states (readiness, failures downstream, admission, backfill, timeouts)", async () => {
    const next = random(13);
    for (let round = 0; round < 300; round++) {
      const plan = await compileYaml(randomYaml(next, 2 + Math.floor(next() * 12), round % 3 === 0));
      const groups: GroupSnapshot[] = plan.groups.map(() => {
        const status = STATUSES[Math.floor(next() * STATUSES.length)]!;
        return { status, queuedAt: next() < 0.5 ? 0 : 900, runningAt: next() < 0.5 ? 0 : 900 };
      });
      const capacity: Capacity = { cpu: Math.floor(next() * 8), gpu: 0, memoryBytes: 100 * GiB };
      const used = { cpu: Math.floor(next() * 3), gpu: 0, memoryBytes: 0 };
      const base: SchedulerInput = {
        plan,
        groups,
        capacity,
        used,
        activeTasks: Math.floor(next() * 4),
        maxParallel: 1 + Math.floor(next() * 6),
        mayAdmit: next() < 0.9,
        now: 6_000,
      };
      const full = schedule(base);
      const focused = schedule({ ...base, focus: focusOf(plan, groups) });
      expect(focused, `round ${round}`).toEqual(full);
    }
  });
});

describe("a focused pass looks at what changed, not at every group", () => {
  it("10,000 groups waiting for 2 slots: one exit later, a pass reads a few of them", async () => {
    const lines = ["workflow:", "  name: wide", "  tasks:"];
    for (let i = 0; i < 10_000; i++) lines.push(`  - {name: t${i}, image: alpine, command: ["true"]}`);
    const plan = await compileYaml(lines.join("\n") + "\n");
    // t0 has ended, t1 runs, the rest wait for resources: one slot is free.
    const states: GroupSnapshot[] = plan.groups.map((_, g) => ({ status: g === 0 ? "COMPLETED" : g === 1 ? "RUNNING" : "SCHEDULING" }));
    const focus = new SchedulingFocus(plan, (g) => states[g]!.status);
    focus.rebuild();
    focus.takeWaiting();
    let reads = 0;
    const groups = new Proxy(states, {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const input: SchedulerInput = {
      plan,
      groups,
      capacity: { cpu: 2, gpu: 0, memoryBytes: 100 * GiB },
      used: { cpu: 1, gpu: 0, memoryBytes: 0 },
      activeTasks: 1,
      maxParallel: 2,
      now: 1_000,
    };
    const focused = schedule({
      ...input,
      focus: {
        waiting: focus.takeWaiting(),
        running: focus.running,
        schedulingFrom: focus.schedulingFrom,
        schedulingCount: focus.schedulingCount,
      },
    });
    expect(focused.actions).toEqual([{ kind: "admit", group: 2 }]);
    expect(reads).toBeLessThan(20);
    reads = 0;
    expect(schedule(input)).toEqual(focused);
    expect(reads).toBeGreaterThanOrEqual(10_000);
  });

  it("keeps count as statuses change: waiting groups come back when an upstream group ends", async () => {
    const plan = await compileYaml(
      [
        "workflow:",
        "  name: chain",
        "  tasks:",
        ...[0, 1, 2].map((i) => `  - {name: t${i}, image: alpine, command: ["true"]${i ? `, inputs: [{task: t${i - 1}}]` : ""}}`),
      ].join("\n") + "\n",
    );
    const status: GroupStatus[] = ["SUBMITTING", "SUBMITTING", "SUBMITTING"];
    const focus = new SchedulingFocus(plan, (g) => status[g]!);
    const set = (g: number, to: GroupStatus) => {
      const from = status[g]!;
      status[g] = to;
      focus.changed(g, from, to);
    };
    [0, 1, 2].forEach((g) => set(g, "WAITING"));
    expect([...focus.takeWaiting()]).toEqual([0, 1, 2]);
    expect([...focus.takeWaiting()]).toEqual([]);
    set(0, "SCHEDULING");
    expect([focus.schedulingFrom, focus.schedulingCount]).toEqual([0, 1]);
    set(0, "INITIALIZING");
    set(0, "RUNNING");
    expect([focus.schedulingCount, [...focus.running]]).toEqual([0, [0]]);
    set(0, "COMPLETED");
    expect([[...focus.takeWaiting()], [...focus.running], focus.allEnded]).toEqual([[1], [], false]);
    set(1, "FAILED_UPSTREAM");
    set(2, "FAILED_UPSTREAM");
    expect(focus.allEnded).toBe(true);
  });
});
