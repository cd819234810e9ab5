/**
 * The scheduler is a pure function of (plan, state, capacity, now): every
 * case here states the time explicitly; nothing sleeps and no timer runs.
 */
import { describe, expect, it } from "vitest";
import {
  findUnschedulable,
  schedule,
  type Capacity,
  type GroupSnapshot,
  type SchedulerAction,
  type SchedulerInput,
} from "../../src/engine/index.js";
import type { GroupStatus } from "../../src/engine/index.js";
import type { CompiledWorkflow } from "../../src/plan/index.js";
import { compileYaml, groupNamed } from "./plan-helpers.js";

const GiB = 1024 ** 3;
const BIG: Capacity = { cpu: 1000, gpu: 1000, memoryBytes: 1000 * GiB };
const NONE: Capacity = { cpu: 0, gpu: 0, memoryBytes: 0 };

/** Snapshots in plan order; groups not named are WAITING. */
function snapshots(plan: CompiledWorkflow, states: Record<string, GroupStatus | GroupSnapshot>): GroupSnapshot[] {
  for (const name of Object.keys(states)) groupNamed(plan, name);
  return plan.groups.map((g) => {
    const s = states[g.name];
    if (s === undefined) return { status: "WAITING" };
    return typeof s === "string" ? { status: s } : s;
  });
}

function input(
  plan: CompiledWorkflow,
  states: Record<string, GroupStatus | GroupSnapshot>,
  over: Partial<SchedulerInput> = {},
): SchedulerInput {
  return {
    plan,
    groups: snapshots(plan, states),
    capacity: BIG,
    used: NONE,
    activeTasks: 0,
    maxParallel: 1000,
    now: 1_000,
    ...over,
  };
}

/** Actions with group names instead of indices, for readable expectations. */
function named(plan: CompiledWorkflow, actions: readonly SchedulerAction[]): string[] {
  const n = (i: number) => plan.groups[i]!.name;
  return actions.map((a) => (a.kind === "fail-upstream" ? `fail-upstream ${n(a.group)} (${n(a.upstream)})` : `${a.kind} ${n(a.group)}`));
}

const task = (name: string, extra = "") =>
  `      - {name: ${name}, image: alpine:3.18, command: [echo, ${name}]${extra ? ", " + extra : ""}}`;
const group = (name: string, ...tasks: string[]) => [`  - name: ${name}`, "    tasks:", ...tasks].join("\n");
const workflow = (header: string[], groups: string[]) => ["workflow:", "  name: sched", ...header, "  groups:", ...groups].join("\n");

describe("readiness: a group is enqueued only when every upstream group has COMPLETED", () => {
  // a and b both feed c (diamond bottom); e has no upstream.
  const yaml = workflow(
    [],
    [group("a", task("ta")), group("b", task("tb")), group("c", task("tc", "inputs: [{task: ta}, {task: tb}]")), group("e", task("te"))],
  );

  it("enqueues (and admits) a group without upstream at once", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: "RUNNING", b: "RUNNING" }));
    expect(named(plan, decision.actions)).toEqual(["enqueue e", "admit e"]);
  });

  it.each<[GroupStatus, GroupStatus]>([
    ["COMPLETED", "RUNNING"],
    ["COMPLETED", "INITIALIZING"],
    ["COMPLETED", "SCHEDULING"],
    ["WAITING", "COMPLETED"],
    ["RUNNING", "RUNNING"],
  ])("does not enqueue c while its upstreams are %s and %s", async (a, b) => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a, b, e: "RUNNING" }));
    expect(decision.actions.filter((x) => x.group === groupNamed(plan, "c").index)).toEqual([]);
  });

  it("enqueues c once both upstreams have COMPLETED", async () => {
    const plan = await compileYaml(yaml);
    const c = groupNamed(plan, "c").index;
    const decision = schedule(input(plan, { a: "COMPLETED", b: "COMPLETED", e: "RUNNING" }));
    expect(decision.actions).toEqual([
      { kind: "enqueue", group: c },
      { kind: "admit", group: c },
    ]);
  });

  it("leaves groups that are already scheduled, running or finished alone", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: "RUNNING", b: "INITIALIZING", e: "COMPLETED" }));
    expect(decision.actions).toEqual([]);
    expect(decision.wakeAt).toBeUndefined();
  });
});

describe("fail-upstream", () => {
  // a -> b -> c is one branch; x -> d is a sibling branch.
  const yaml = workflow(
    [],
    [
      group("a", task("ta")),
      group("b", task("tb", "inputs: [{task: ta}]")),
      group("c", task("tc", "inputs: [{task: tb}]")),
      group("x", task("tx")),
      group("d", task("td", "inputs: [{task: tx}]")),
    ],
  );

  it("propagates down a whole chain in one decision while the sibling branch goes on", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: "FAILED", x: "COMPLETED" }));
    expect(named(plan, decision.actions).sort()).toEqual(["admit d", "enqueue d", "fail-upstream b (a)", "fail-upstream c (b)"]);
  });

  it("names the failed upstream in the action", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: "FAILED", x: "RUNNING" }));
    const ix = (n: string) => groupNamed(plan, n).index;
    expect(decision.actions).toContainEqual({ kind: "fail-upstream", group: ix("b"), upstream: ix("a") });
    expect(decision.actions).toContainEqual({ kind: "fail-upstream", group: ix("c"), upstream: ix("b") });
    expect(decision.actions.some((a) => a.group === ix("d"))).toBe(false);
  });

  it.each<GroupStatus>(["FAILED_EXEC_TIMEOUT", "FAILED_QUEUE_TIMEOUT", "FAILED_CANCELED", "FAILED_START_ERROR", "FAILED_UPSTREAM"])(
    "treats an upstream %s as failed",
    async (failure) => {
      const plan = await compileYaml(yaml);
      const decision = schedule(input(plan, { a: "COMPLETED", b: failure, x: "RUNNING" }));
      expect(named(plan, decision.actions)).toEqual(["fail-upstream c (b)"]);
    },
  );

  it("does not fail a group whose upstream is merely unfinished", async () => {
    const plan = await compileYaml(yaml);
    for (const status of ["RUNNING", "INITIALIZING", "SCHEDULING", "WAITING"] as const) {
      const decision = schedule(input(plan, { a: status, x: "RUNNING" }));
      expect(decision.actions.filter((a) => a.kind === "fail-upstream")).toEqual([]);
    }
  });

  it("fails a downstream group even when it has another upstream that is still running", async () => {
    const plan = await compileYaml(
      workflow([], [group("p", task("tp")), group("q", task("tq")), group("r", task("tr", "inputs: [{task: tp}, {task: tq}]"))]),
    );
    const decision = schedule(input(plan, { p: "RUNNING", q: "FAILED" }));
    expect(named(plan, decision.actions)).toEqual(["fail-upstream r (q)"]);
  });
});

describe("gang admission", () => {
  // g2 has two tasks of 2 cpu, 1 gpu, 3Gi each: its demand is the sum.
  const header = ["  resources:", "    unit: {cpu: 2, gpu: 1, memory: 3Gi}", "    one: {cpu: 1, memory: 1Gi}"];
  const yaml = workflow(header, [group("gang", task("m1", "resource: unit, lead: true"), task("m2", "resource: unit"))]);

  it("sums the demand of every member of a group", async () => {
    const plan = await compileYaml(yaml);
    expect(groupNamed(plan, "gang").demand).toMatchObject({ cpu: 4, gpu: 2, memoryBytes: 6 * GiB });
  });

  it("admits the group when the whole demand fits exactly", async () => {
    const plan = await compileYaml(yaml);
    const capacity = { cpu: 8, gpu: 4, memoryBytes: 16 * GiB };
    const used = { cpu: 4, gpu: 2, memoryBytes: 10 * GiB };
    expect(named(plan, schedule(input(plan, { gang: "SCHEDULING" }, { capacity, used })).actions)).toEqual(["admit gang"]);
  });

  it.each<[string, Capacity]>([
    ["cpu", { cpu: 5, gpu: 2, memoryBytes: 10 * GiB }],
    ["gpu", { cpu: 4, gpu: 3, memoryBytes: 10 * GiB }],
    ["memory", { cpu: 4, gpu: 2, memoryBytes: 10 * GiB + 1 }],
  ])("does not admit it when one member's share of %s is missing", async (_what, used) => {
    const plan = await compileYaml(yaml);
    const capacity = { cpu: 8, gpu: 4, memoryBytes: 16 * GiB };
    // One task's worth would fit; the gang's would not.
    const decision = schedule(input(plan, { gang: "SCHEDULING" }, { capacity, used }));
    expect(decision.actions).toEqual([]);
  });

  it("admits several groups in one decision until the capacity runs out, counting what it admitted", async () => {
    const plan = await compileYaml(
      workflow(header, [
        group("g1", task("t1", "resource: one")),
        group("g2", task("t2", "resource: one")),
        group("g3", task("t3", "resource: one")),
        group("g4", task("t4", "resource: one")),
      ]),
    );
    const capacity = { cpu: 3, gpu: 0, memoryBytes: 100 * GiB };
    const used = { cpu: 1, gpu: 0, memoryBytes: 0 };
    const decision = schedule(input(plan, {}, { capacity, used, activeTasks: 1 }));
    expect(named(plan, decision.actions)).toEqual(["enqueue g1", "admit g1", "enqueue g2", "admit g2", "enqueue g3", "enqueue g4"]);
  });

  it("does not modify the `used` it was given", async () => {
    const plan = await compileYaml(yaml);
    const used = { cpu: 0, gpu: 0, memoryBytes: 0 };
    schedule(input(plan, { gang: "SCHEDULING" }, { used }));
    expect(used).toEqual({ cpu: 0, gpu: 0, memoryBytes: 0 });
  });
});

describe("maxParallel", () => {
  const yaml = workflow(
    [],
    [
      group("one", task("o1")),
      group("two", task("w1", "lead: true"), task("w2")),
      group("three", task("h1", "lead: true"), task("h2"), task("h3")),
    ],
  );

  it("admits groups only while their tasks fit under maxParallel", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { one: "SCHEDULING", two: "SCHEDULING", three: "SCHEDULING" }, { maxParallel: 3 }));
    expect(named(plan, decision.actions)).toEqual(["admit one", "admit two"]);
  });

  it("counts the tasks already active", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { one: "SCHEDULING", two: "SCHEDULING", three: "RUNNING" }, { maxParallel: 4, activeTasks: 3 }));
    expect(named(plan, decision.actions)).toEqual(["admit one"]);
  });

  it("admits a group larger than maxParallel when nothing else is active", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { one: "COMPLETED", two: "COMPLETED", three: "SCHEDULING" }, { maxParallel: 2, activeTasks: 0 }));
    expect(named(plan, decision.actions)).toEqual(["admit three"]);
  });

  it("does not admit that larger group while anything else is active", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { one: "RUNNING", two: "COMPLETED", three: "SCHEDULING" }, { maxParallel: 2, activeTasks: 1 }));
    expect(decision.actions).toEqual([]);
  });

  it("admits the larger group alone: nothing after it in the same decision", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(
      input(plan, { one: "COMPLETED", two: "SCHEDULING", three: "SCHEDULING" }, { maxParallel: 1, activeTasks: 0 }),
    );
    expect(named(plan, decision.actions)).toEqual(["admit two"]);
  });
});

describe("queue timeout", () => {
  const header = ["  timeout: {queue_timeout: 10s}", "  resources:", "    one: {cpu: 1}"];
  const yaml = workflow(header, [
    group("a", task("ta", "resource: one")),
    group("b", task("tb", "resource: one")),
    group("c", task("tc", "resource: one, inputs: [{task: tb}]")),
  ]);
  const full = { capacity: { cpu: 1, gpu: 0, memoryBytes: GiB }, used: { cpu: 1, gpu: 0, memoryBytes: 0 }, activeTasks: 1 };

  it("compiles the timeout to milliseconds", async () => {
    expect((await compileYaml(yaml)).timeouts.queueMs).toBe(10_000);
  });

  it("does not fire before queuedAt + queueMs, and asks to be woken at that deadline", async () => {
    const plan = await compileYaml(yaml);
    for (const now of [5_000, 14_000, 14_999]) {
      const decision = schedule(input(plan, { a: { status: "SCHEDULING", queuedAt: 5_000 }, b: "RUNNING" }, { ...full, now }));
      expect(decision.actions).toEqual([]);
      expect(decision.wakeAt).toBe(15_000);
    }
  });

  it("fires at queuedAt + queueMs exactly, and later", async () => {
    const plan = await compileYaml(yaml);
    for (const now of [15_000, 99_000]) {
      const decision = schedule(input(plan, { a: { status: "SCHEDULING", queuedAt: 5_000 }, b: "RUNNING" }, { ...full, now }));
      expect(named(plan, decision.actions)).toEqual(["queue-timeout a"]);
    }
  });

  it("sets wakeAt to the earliest of several deadlines", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(
      input(plan, { a: { status: "SCHEDULING", queuedAt: 8_000 }, b: { status: "SCHEDULING", queuedAt: 3_000 } }, { ...full, now: 9_000 }),
    );
    expect(decision.actions).toEqual([]);
    expect(decision.wakeAt).toBe(13_000);
  });

  it("starts the clock of a group enqueued in this decision at `now`", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { b: "RUNNING" }, { ...full, now: 42_000 }));
    expect(named(plan, decision.actions)).toEqual(["enqueue a"]);
    expect(decision.wakeAt).toBe(52_000);
  });

  it("fails the downstream of a timed-out group in the same decision", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: "RUNNING", b: { status: "SCHEDULING", queuedAt: 0 } }, { ...full, now: 10_000 }));
    expect(named(plan, decision.actions)).toEqual(["queue-timeout b", "fail-upstream c (b)"]);
  });

  it("never fires for a group that fits", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: { status: "SCHEDULING", queuedAt: 0 }, b: "RUNNING" }, { now: 1_000_000 }));
    expect(named(plan, decision.actions)).toEqual(["admit a"]);
  });

  it("never fires without a queue_timeout", async () => {
    const plan = await compileYaml(workflow(["  resources:", "    one: {cpu: 1}"], [group("a", task("ta", "resource: one"))]));
    const decision = schedule(input(plan, { a: { status: "SCHEDULING", queuedAt: 0 } }, { ...full, now: 1e12 }));
    expect(decision.actions).toEqual([]);
    expect(decision.wakeAt).toBeUndefined();
  });
});

describe("exec timeout", () => {
  const header = ["  timeout: {exec_timeout: 5s, queue_timeout: 1m}"];
  const yaml = workflow(header, [group("a", task("ta")), group("b", task("tb")), group("c", task("tc", "inputs: [{task: ta}]"))]);

  it("runs from runningAt: silent before runningAt + execMs, with wakeAt at that deadline", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: { status: "RUNNING", runningAt: 2_000 }, b: "COMPLETED" }, { now: 6_999 }));
    expect(decision.actions).toEqual([]);
    expect(decision.wakeAt).toBe(7_000);
  });

  it("fires at runningAt + execMs", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: { status: "RUNNING", runningAt: 2_000 }, b: "COMPLETED" }, { now: 7_000 }));
    expect(named(plan, decision.actions)).toEqual(["exec-timeout a"]);
  });

  it("does not run while a group is only initializing (the clock starts at RUNNING)", async () => {
    const plan = await compileYaml(yaml);
    const decision = schedule(input(plan, { a: { status: "INITIALIZING", queuedAt: 0 }, b: "COMPLETED" }, { now: 1e9 }));
    expect(decision.actions).toEqual([]);
    expect(decision.wakeAt).toBeUndefined();
  });

  it("wakes at the earliest deadline over exec and queue timeouts", async () => {
    const plan = await compileYaml(yaml);
    // b cannot be admitted (maxParallel is taken by a), so it waits with a queue deadline.
    const at = (runningAt: number, queuedAt: number) =>
      schedule(
        input(
          plan,
          { a: { status: "RUNNING", runningAt }, b: { status: "SCHEDULING", queuedAt } },
          { now: 101_000, maxParallel: 1, activeTasks: 1 },
        ),
      );
    const execFirst = at(100_000, 60_000);
    expect(execFirst.actions).toEqual([]);
    expect(execFirst.wakeAt).toBe(105_000);
    const queueFirst = at(100_000, 44_000);
    expect(queueFirst.actions).toEqual([]);
    expect(queueFirst.wakeAt).toBe(104_000);
  });
});

describe("findUnschedulable", () => {
  it("lists a group whose demand exceeds the pool, with the numbers", async () => {
    const plan = await compileYaml(
      workflow(
        ["  resources:", "    huge: {cpu: 6, gpu: 1, memory: 2Gi}", "    small: {cpu: 1, memory: 1Gi}"],
        [
          group("fits", task("f1", "resource: small")),
          group("too-big", task("b1", "resource: huge, lead: true"), task("b2", "resource: huge")),
        ],
      ),
    );
    const capacity = { cpu: 8, gpu: 4, memoryBytes: 16 * GiB };
    expect(findUnschedulable(plan, capacity)).toEqual([
      { group: "too-big", demand: { cpu: 12, gpu: 2, memoryBytes: 4 * GiB, storageBytes: 0 }, capacity },
    ]);
  });

  it.each<[string, Capacity]>([
    ["gpu", { cpu: 100, gpu: 1, memoryBytes: 100 * GiB }],
    ["memory", { cpu: 100, gpu: 100, memoryBytes: 2 * GiB - 1 }],
  ])("checks %s too", async (_what, capacity) => {
    const plan = await compileYaml(
      workflow(["  resources:", "    r: {cpu: 1, gpu: 2, memory: 2Gi}"], [group("g", task("t", "resource: r"))]),
    );
    expect(findUnschedulable(plan, capacity).map((u) => u.group)).toEqual(["g"]);
  });

  it("is empty when every group fits an idle pool, however busy it is now", async () => {
    const plan = await compileYaml(workflow(["  resources:", "    r: {cpu: 4}"], [group("g", task("t", "resource: r"))]));
    expect(findUnschedulable(plan, { cpu: 4, gpu: 0, memoryBytes: 0 })).toEqual([]);
  });
});
