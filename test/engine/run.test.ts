/**
 * WorkflowRun driven by in-memory fakes: a Runtime whose members exit when the
 * test says so, a RunRecorder that keeps everything, and a Clock whose timers
 * fire by hand. Nothing sleeps; `flush()` lets pending promise callbacks run.
 */
import { describe, expect, it } from "vitest";
import { WorkflowRun, LEAD_HEAD_START_MS, checkTransition, isFailure, type RunOptions, type RunResult } from "../../src/engine/index.js";
import type { CompiledWorkflow } from "../../src/plan/index.js";
import { LocalPool, type ExitInfo, type PreparedMember, type RunContext, type Runtime, type TaskLaunch } from "../../src/runtime/index.js";
import type { Transition } from "../../src/store/index.js";
import type { ResumedRun } from "../../src/engine/resume.js";
import { SharedPool } from "../../src/engine/shared-pool.js";
import { FakeClock, MemoryRecorder, flush, type AttemptRow } from "./fakes.js";
import { compileYaml, locateTask } from "./plan-helpers.js";

// ---- fakes ---------------------------------------------------------------

class FakeMember implements PreparedMember {
  releasedAt: number | undefined;
  readonly stops: Array<{ graceMs: number; at: number }> = [];
  /** Restarts in place asked for (their graces), where the runtime restarts in place. */
  readonly restarts: number[] = [];
  /** Ends the restart asked for last: true, waiting for the next release; false, the command had ended first. */
  finishRestart: ((waiting: boolean) => void) | undefined;
  readonly restart?: (graceMs: number) => Promise<boolean>;
  readonly exited: Promise<ExitInfo>;
  exitedWith: ExitInfo | undefined;
  private resolveExit!: (info: ExitInfo) => void;

  constructor(
    readonly launch: TaskLaunch,
    private readonly runtime: FakeRuntime,
  ) {
    this.exited = new Promise<ExitInfo>((resolve) => (this.resolveExit = resolve));
    if (runtime.restartsInPlace)
      this.restart = (graceMs) => {
        this.restarts.push(graceMs);
        this.runtime.events.push(`restart ${this.launch.key} ${graceMs}`);
        return new Promise<boolean>((resolve) => {
          this.finishRestart = (waiting) => {
            if (waiting) this.releasedAt = undefined;
            resolve(waiting);
          };
          if (this.runtime.autoRestart) this.finishRestart(true);
        });
      };
  }
  release(): void {
    if (this.releasedAt !== undefined) throw new Error(`${this.launch.key} released twice`);
    this.releasedAt = this.runtime.clock.now();
    this.runtime.events.push(`release ${this.launch.key}`);
  }
  /** Simulates the command's exit (only the first call counts, as a process exits once). */
  exit(code: number, startError?: string): void {
    if (this.exitedWith) return;
    this.exitedWith = startError === undefined ? { code } : { code, startError };
    this.runtime.events.push(`exit ${this.launch.key} ${code}`);
    this.resolveExit(this.exitedWith);
  }
  stop(graceMs: number): Promise<void> {
    this.stops.push({ graceMs, at: this.runtime.clock.now() });
    this.runtime.events.push(`stop ${this.launch.key} ${graceMs}`);
    if (this.runtime.exitOnStop) this.exit(143);
    // As a runtime's stop does: resolves once nothing of the attempt is left.
    return this.exited.then(() => undefined);
  }
}

interface PendingPrepare {
  launch: TaskLaunch;
  resolve: () => FakeMember;
  reject: (message: string) => void;
  settled: boolean;
}

class FakeRuntime implements Runtime {
  /** Resolve every prepare() at once (else the test resolves each). */
  autoPrepare = true;
  /** A member's `exited` resolves with 143 as soon as it is stopped. */
  exitOnStop = true;
  /** Members can restart their command in place (PreparedMember.restart). */
  restartsInPlace = false;
  /** Each restart in place is done at once (else the test finishes it: FakeMember.finishRestart). */
  autoRestart = true;
  /** Task names whose prepare() rejects. */
  readonly failPrepare = new Set<string>();
  readonly prepares: PendingPrepare[] = [];
  readonly members: FakeMember[] = [];
  readonly events: string[] = [];
  readonly releasedAddresses: string[][] = [];
  private nextAddress = 1;

  constructor(readonly clock: FakeClock) {}

  describe(): string {
    return "fake";
  }
  notices(): string[] {
    return [];
  }
  async open(_run: RunContext): Promise<void> {}
  async addresses(taskNames: readonly string[]): Promise<Record<string, string>> {
    return Object.fromEntries(taskNames.map((n) => [n, `10.0.0.${this.nextAddress++}`]));
  }
  releaseAddresses(addresses: readonly string[]): void {
    this.releasedAddresses.push([...addresses]);
  }
  prepare(launch: TaskLaunch): Promise<PreparedMember> {
    this.events.push(`prepare ${launch.key}`);
    return new Promise<PreparedMember>((resolve, reject) => {
      const pending: PendingPrepare = {
        launch,
        settled: false,
        resolve: () => {
          if (pending.settled) throw new Error(`${launch.key} settled twice`);
          pending.settled = true;
          const member = new FakeMember(launch, this);
          this.members.push(member);
          resolve(member);
          return member;
        },
        reject: (message) => {
          if (pending.settled) throw new Error(`${launch.key} settled twice`);
          pending.settled = true;
          reject(new Error(message));
        },
      };
      this.prepares.push(pending);
      if (this.failPrepare.has(launch.taskName)) pending.reject(`no sandbox for ${launch.taskName}`);
      else if (this.autoPrepare) pending.resolve();
    });
  }
  async close(): Promise<void> {}
  async sweep(): Promise<string[]> {
    return [];
  }
  readonly keepsTasks = true;
  readonly taskView = { mounts: false, dataPaths: "host" } as const;
  /** Task names whose re-attach finds nothing (fate unknown). */
  readonly lostOnReattach = new Set<string>();
  async reattach(launch: TaskLaunch): Promise<PreparedMember | undefined> {
    this.events.push(`reattach ${launch.key}`);
    if (this.lostOnReattach.has(launch.taskName)) return undefined;
    const member = new FakeMember(launch, this);
    this.members.push(member);
    return member;
  }

  /** The member of a task's attempt (the latest by default). */
  member(task: string, retryId?: number): FakeMember {
    const found = this.members.filter((m) => m.launch.taskName === task && (retryId === undefined || m.launch.retryId === retryId));
    const last = found[found.length - 1];
    if (!last) throw new Error(`no prepared member for ${task}${retryId === undefined ? "" : ` retry ${retryId}`}`);
    return last;
  }
  hasMember(task: string): boolean {
    return this.members.some((m) => m.launch.taskName === task);
  }
  pending(task: string, retryId = 0): PendingPrepare {
    const found = this.prepares.find((p) => p.launch.taskName === task && p.launch.retryId === retryId);
    if (!found) throw new Error(`${task} retry ${retryId} was never prepared`);
    return found;
  }
  prepareCalls(task: string): TaskLaunch[] {
    return this.prepares.filter((p) => p.launch.taskName === task).map((p) => p.launch);
  }
}

/** Keeps every transition and merges updates into rows, one per task attempt (a new retryId starts a new row). */
// ---- harness -------------------------------------------------------------

const GRACE = 1_234;

async function startRun(yaml: string, options: Partial<RunOptions> = {}, setup: (runtime: FakeRuntime) => void = () => {}) {
  const plan = await compileYaml(yaml);
  const clock = new FakeClock();
  const runtime = new FakeRuntime(clock);
  setup(runtime);
  const recorder = new MemoryRecorder();
  const run = new WorkflowRun({
    runId: "wf-1",
    plan,
    session: await new LocalPool("fake", () => runtime).openSession({ runId: "wf-1", dataDir: "/data/wf-1" }),
    recorder,
    dataDir: "/data/wf-1",
    capacity: { cpu: 64, gpu: 0, memoryBytes: 1024 ** 4 },
    maxParallel: 1000,
    maxRetries: 0,
    stopGraceMs: GRACE,
    clock,
    // Most tests look at the barrier itself; the lead's head start has a test of its own.
    leadHeadStartMs: 0,
    ...options,
  });
  let result: RunResult | undefined;
  void run.start().then((r) => (result = r));
  await flush();
  return new Harness(plan, clock, runtime, recorder, run, () => result);
}

class Harness {
  constructor(
    readonly plan: CompiledWorkflow,
    readonly clock: FakeClock,
    readonly runtime: FakeRuntime,
    readonly recorder: MemoryRecorder,
    readonly run: WorkflowRun,
    private readonly result: () => RunResult | undefined,
  ) {}

  get finished(): RunResult | undefined {
    return this.result();
  }
  groupIndex(name: string): number {
    const g = this.plan.groups.findIndex((x) => x.name === `${name}-group`);
    if (g < 0) throw new Error(`no group ${name}`);
    return g;
  }
  groupStatus(name: string): string | undefined {
    return this.recorder.groups.get(this.groupIndex(name))?.status;
  }
  /** The task's current (latest) attempt row. */
  task(name: string): AttemptRow {
    const { g, t } = locateTask(this.plan, name);
    const rows = this.recorder.attempts.get(`${g}/${t}`) ?? [];
    const row = rows[rows.length - 1];
    if (!row) throw new Error(`nothing recorded for ${name}`);
    return row;
  }
  attempts(name: string): AttemptRow[] {
    const { g, t } = locateTask(this.plan, name);
    return this.recorder.attempts.get(`${g}/${t}`) ?? [];
  }
  taskTransitions(name: string, retryId?: number): Transition[] {
    const { g, t } = locateTask(this.plan, name);
    return this.recorder.transitions.filter(
      (x) =>
        x.subject.kind === "task" &&
        x.subject.group === g &&
        x.subject.task === t &&
        (retryId === undefined || x.subject.retryId === retryId),
    );
  }
  groupTransitions(name: string): Transition[] {
    const g = this.groupIndex(name);
    return this.recorder.transitions.filter((x) => x.subject.kind === "group" && x.subject.group === g);
  }
  lastTaskTransition(name: string): Transition {
    const all = this.taskTransitions(name);
    const last = all[all.length - 1];
    if (!last) throw new Error(`no transition of ${name}`);
    return last;
  }
  /** Make a task's current member exit, then let the engine react. */
  async exit(task: string, code: number): Promise<void> {
    this.runtime.member(task).exit(code);
    await flush();
  }
}

/** A flow-style task line for a `groups:` workflow. */
const task = (name: string, extra = "") =>
  `      - {name: ${name}, image: alpine:3.18, command: [sh, -c, run-${name}]${extra ? ", " + extra : ""}}`;
/** Groups are named `<name>-group` (names of groups and tasks share one namespace); the harness takes `<name>`. */
const group = (name: string, ...tasks: string[]) => [`  - name: ${name}-group`, "    tasks:", ...tasks].join("\n");
const groupWith = (name: string, fields: string, ...tasks: string[]) =>
  [`  - name: ${name}-group`, `    ${fields}`, "    tasks:", ...tasks].join("\n");
const workflow = (groups: string[], header: string[] = []) =>
  ["workflow:", "  name: engine-test", ...header, "  groups:", ...groups].join("\n");

/** One group of a lead and two sleepers, with optional group fields. */
const trio = (fields = "barrier: true") =>
  workflow([groupWith("trio", fields, task("lead", "lead: true"), task("worker-1"), task("worker-2"))]);

// ---- tests -----------------------------------------------------------------

describe("barrier", () => {
  it("gives the lead a head start of LEAD_HEAD_START_MS over its siblings, all within the 100 ms start window", async () => {
    const h = await startRun(trio(), { leadHeadStartMs: LEAD_HEAD_START_MS }, (r) => (r.autoPrepare = false));
    for (const name of ["worker-1", "lead", "worker-2"]) h.runtime.pending(name).resolve();
    await flush();
    const releaseTime = h.clock.now();
    expect(h.task("lead").status).toBe("RUNNING");
    expect(h.task("lead").startTime).toBe(releaseTime);
    expect(h.task("worker-1").status).toBe("INITIALIZING");
    expect(h.task("worker-2").status).toBe("INITIALIZING");
    h.clock.advance(LEAD_HEAD_START_MS);
    await flush();
    for (const name of ["worker-1", "worker-2"]) {
      expect(h.task(name).status).toBe("RUNNING");
      expect(h.task(name).startTime).toBe(releaseTime + LEAD_HEAD_START_MS);
    }
    expect(LEAD_HEAD_START_MS).toBeLessThan(100);
  });

  it("releases the members of a group together, only once every member is prepared, at one clock time", async () => {
    const h = await startRun(trio(), {}, (r) => (r.autoPrepare = false));
    // Every member's sandbox is asked for as soon as the group is admitted.
    expect(h.runtime.prepares.map((p) => p.launch.taskName).sort()).toEqual(["lead", "worker-1", "worker-2"]);
    expect(h.groupStatus("trio")).toBe("INITIALIZING");

    h.runtime.pending("worker-1").resolve();
    h.clock.advance(50);
    await flush();
    h.runtime.pending("lead").resolve();
    h.clock.advance(70);
    await flush();
    // Two of three ready: nobody runs yet.
    expect(h.runtime.members.map((m) => m.releasedAt)).toEqual([undefined, undefined]);
    expect(h.task("lead").status).toBe("INITIALIZING");
    expect(h.task("worker-1").status).toBe("INITIALIZING");
    expect(h.groupStatus("trio")).toBe("INITIALIZING");

    h.clock.advance(30);
    const releaseTime = h.clock.now();
    h.runtime.pending("worker-2").resolve();
    await flush();
    expect(h.runtime.members.map((m) => m.releasedAt)).toEqual([releaseTime, releaseTime, releaseTime]);
    for (const name of ["lead", "worker-1", "worker-2"]) {
      expect(h.task(name).status).toBe("RUNNING");
      expect(h.task(name).startTime).toBe(releaseTime);
    }
    expect(h.groupStatus("trio")).toBe("RUNNING");
    expect(h.groupTransitions("trio").find((x) => x.to === "RUNNING")?.time).toBe(releaseTime);
  });

  it("with `barrier: false` releases each member as soon as it is prepared", async () => {
    const h = await startRun(trio("barrier: false"), {}, (r) => (r.autoPrepare = false));
    const start = h.clock.now();
    h.runtime.pending("worker-2").resolve();
    await flush();
    expect(h.runtime.member("worker-2").releasedAt).toBe(start);
    expect(h.task("worker-2").status).toBe("RUNNING");
    expect(h.task("lead").status).toBe("INITIALIZING");
    expect(h.groupStatus("trio")).toBe("RUNNING");

    h.clock.advance(100);
    h.runtime.pending("lead").resolve();
    await flush();
    expect(h.runtime.member("lead").releasedAt).toBe(start + 100);
    expect(h.task("worker-1").status).toBe("INITIALIZING");

    h.clock.advance(100);
    h.runtime.pending("worker-1").resolve();
    await flush();
    expect(h.runtime.member("worker-1").releasedAt).toBe(start + 200);
  });

  it("hands every member the group's addresses and its own, and per-attempt output directories", async () => {
    const h = await startRun(trio());
    const launches = h.runtime.prepares.map((p) => p.launch);
    const hosts = launches[0]!.hosts;
    expect(Object.keys(hosts).sort()).toEqual(["lead", "worker-1", "worker-2"]);
    for (const launch of launches) {
      expect(launch.hosts).toEqual(hosts);
      expect(launch.address).toBe(hosts[launch.taskName]);
      expect(launch.retryId).toBe(0);
      expect(launch.key).toBe(`trio-group/${launch.taskName}/0`);
      expect(launch.logPath).toBe(`/logs/trio-group/${launch.taskName}/0.log`);
    }
    expect(new Set(launches.map((l) => l.outputDir)).size).toBe(3);
  });
});

describe("{{host:X}}", () => {
  const pair = () =>
    workflow([
      group(
        "pair",
        "      - {name: Server_A, lead: true, image: alpine:3.18, command: [sh, -c, 'at {{host:client}}'], environment: {PEER: '{{host:client}}'}}",
        "      - {name: client, image: alpine:3.18, command: [sh, -c, 'at {{host:server_a}}']}",
      ),
    ]);

  it("becomes the runtime's name of the member (hostName), given the group and the task as written", async () => {
    const h = await startRun(pair(), {}, (runtime) => {
      (runtime as FakeRuntime & { hostName: Runtime["hostName"] }).hostName = (group, task, address) => `${task}.${group}.test=${address}`;
    });
    const launch = (name: string) => h.runtime.prepares.find((p) => p.launch.taskName === name)!.launch;
    const hosts = launch("client").hosts;
    expect(launch("Server_A").argv).toEqual(["sh", "-c", `at client.pair-group.test=${hosts.client}`]);
    expect(launch("Server_A").env.PEER).toBe(`client.pair-group.test=${hosts.client}`);
    expect(launch("client").argv).toEqual(["sh", "-c", `at Server_A.pair-group.test=${hosts.Server_A}`]);
  });

  it("is the member's address where the runtime has no names", async () => {
    const h = await startRun(pair());
    const launch = h.runtime.prepares.find((p) => p.launch.taskName === "client")!.launch;
    expect(launch.argv).toEqual(["sh", "-c", `at ${launch.hosts.Server_A}`]);
  });
});

describe("lead rules", () => {
  it("lead exit 0 completes the group and stops the running non-leads as COMPLETED, 'lead task finished'", async () => {
    const h = await startRun(trio());
    await h.exit("lead", 0);
    expect(h.task("lead")).toMatchObject({ status: "COMPLETED", exitCode: 0 });
    expect(h.groupStatus("trio")).toBe("COMPLETED");
    for (const worker of ["worker-1", "worker-2"]) {
      expect(h.runtime.member(worker).stops.map((s) => s.graceMs)).toEqual([GRACE]);
      expect(h.task(worker).status).toBe("COMPLETED");
      expect(h.lastTaskTransition(worker).reason).toContain("lead task finished");
    }
    expect(h.finished).toEqual({ status: "COMPLETED" });
    expect(h.recorder.run.status).toBe("COMPLETED");
  });

  it("lead exit 1 fails the group; the non-leads are set FAILED and stopped", async () => {
    const h = await startRun(trio());
    await h.exit("lead", 1);
    expect(h.task("lead")).toMatchObject({ status: "FAILED", exitCode: 1 });
    expect(h.groupStatus("trio")).toBe("FAILED");
    for (const worker of ["worker-1", "worker-2"]) {
      expect(h.runtime.member(worker).stops).toHaveLength(1);
      expect(h.task(worker).status).toBe("FAILED");
      expect(h.lastTaskTransition(worker).reason).toContain("lead task finished");
    }
    expect(h.finished).toEqual({ status: "FAILED" });
  });

  it("a non-lead that exits on its own before the lead keeps its own status and is not stopped", async () => {
    const h = await startRun(trio());
    await h.exit("worker-1", 0);
    expect(h.task("worker-1")).toMatchObject({ status: "COMPLETED", exitCode: 0 });
    expect(h.groupStatus("trio")).toBe("RUNNING");
    await h.exit("lead", 1);
    expect(h.task("worker-1").status).toBe("COMPLETED");
    expect(h.runtime.member("worker-1").stops).toEqual([]);
    expect(h.task("worker-2").status).toBe("FAILED");
  });

  it("with `ignoreNonleadStatus: false`, a non-lead exiting 3 fails the group and stops the lead", async () => {
    const h = await startRun(trio("ignoreNonleadStatus: false"));
    await h.exit("worker-1", 3);
    expect(h.task("worker-1")).toMatchObject({ status: "FAILED", exitCode: 3 });
    expect(h.groupStatus("trio")).toBe("FAILED");
    expect(h.runtime.member("lead").stops.map((s) => s.graceMs)).toEqual([GRACE]);
    expect(h.runtime.member("worker-2").stops).toHaveLength(1);
    expect(h.task("lead").status).toBe("FAILED");
    expect(h.task("worker-2").status).toBe("FAILED");
    expect(h.finished).toEqual({ status: "FAILED" });
  });

  it("with the default `ignoreNonleadStatus: true`, a failing non-lead does not fail the group", async () => {
    const h = await startRun(trio());
    await h.exit("worker-1", 3);
    expect(h.task("worker-1")).toMatchObject({ status: "FAILED", exitCode: 3 });
    expect(h.groupStatus("trio")).toBe("RUNNING");
    expect(h.runtime.member("lead").stops).toEqual([]);
    expect(h.runtime.member("worker-2").stops).toEqual([]);
    expect(h.task("lead").status).toBe("RUNNING");
    expect(h.finished).toBeUndefined();
    await h.exit("lead", 0);
    expect(h.groupStatus("trio")).toBe("COMPLETED");
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });
});

describe("lead rules before every member is up", () => {
  it("with `barrier: false`, a lead that completes before a sibling is prepared ends it as COMPLETED; it is never released", async () => {
    const h = await startRun(trio("barrier: false"), {}, (r) => (r.autoPrepare = false));
    h.runtime.pending("lead").resolve();
    h.runtime.pending("worker-1").resolve();
    await flush();
    await h.exit("lead", 0);
    expect(h.groupStatus("trio")).toBe("COMPLETED");
    expect(h.task("worker-2").status).toBe("COMPLETED");
    expect(h.lastTaskTransition("worker-2")).toMatchObject({ from: "INITIALIZING", to: "COMPLETED" });
    // The member being prepared ended with its group's stop (runtime/local-pool.ts): the run does not wait for its sandbox.
    expect(h.finished).toEqual({ status: "COMPLETED" });
    const late = h.runtime.pending("worker-2").resolve();
    await flush();
    // Its sandbox, come up after all, is stopped (with no grace) and never released.
    expect(late.releasedAt).toBeUndefined();
    expect(late.stops.length).toBeGreaterThan(0);
    expect(late.stops.every((stop) => stop.graceMs === 0)).toBe(true);
  });
});

describe("exit actions and retries", () => {
  it('`exitActions: {COMPLETE: "15"}` completes on exit 15 (and without it 15 fails)', async () => {
    const h = await startRun(workflow([group("partial", task("partial", 'exitActions: {COMPLETE: "15"}')), group("plain", task("plain"))]));
    await h.exit("partial", 15);
    await h.exit("plain", 15);
    expect(h.task("partial")).toMatchObject({ status: "COMPLETED", exitCode: 15 });
    expect(h.groupStatus("partial")).toBe("COMPLETED");
    expect(h.task("plain")).toMatchObject({ status: "FAILED", exitCode: 15 });
    expect(h.finished).toEqual({ status: "FAILED" });
  });

  it("a FAIL rule fails an exit 0", async () => {
    const h = await startRun(workflow([group("strict", task("strict", 'exitActions: {FAIL: "0"}'))]));
    await h.exit("strict", 0);
    expect(h.task("strict")).toMatchObject({ status: "FAILED", exitCode: 0 });
  });

  it("the pool's exit actions apply when the task has none", async () => {
    const h = await startRun(workflow([group("g", task("t"))]), { poolExitActions: [{ action: "COMPLETE", from: 7, to: 9 }] });
    await h.exit("t", 8);
    expect(h.task("t")).toMatchObject({ status: "COMPLETED", exitCode: 8 });
  });

  it("RESCHEDULE on exit 1 with maxRetries 1 makes retry 1 in a fresh sandbox, which completes on exit 0", async () => {
    const h = await startRun(workflow([group("flaky", task("flaky", 'exitActions: {RESCHEDULE: "1"}'))]), { maxRetries: 1 });
    const first = h.runtime.member("flaky", 0);
    await h.exit("flaky", 1);

    const calls = h.runtime.prepareCalls("flaky");
    expect(calls.map((l) => l.retryId)).toEqual([0, 1]);
    expect(calls[1]!.key).toBe("flaky-group/flaky/1");
    expect(calls[1]!.outputDir).not.toBe(calls[0]!.outputDir);
    expect(calls[1]!.logPath).toBe("/logs/flaky-group/flaky/1.log");
    const second = h.runtime.member("flaky", 1);
    expect(second).not.toBe(first);
    expect(second.releasedAt).toBeDefined();

    const retry0 = h.taskTransitions("flaky", 0);
    expect(retry0[retry0.length - 1]).toMatchObject({ from: "RUNNING", to: "RESCHEDULED" });
    expect(h.attempts("flaky")[0]).toMatchObject({ retryId: 0, status: "RESCHEDULED", exitCode: 1 });
    expect(h.task("flaky")).toMatchObject({ retryId: 1, status: "RUNNING" });
    expect(h.groupStatus("flaky")).toBe("RUNNING");
    expect(h.finished).toBeUndefined();

    await h.exit("flaky", 0);
    expect(h.task("flaky")).toMatchObject({ retryId: 1, status: "COMPLETED", exitCode: 0 });
    expect(h.taskTransitions("flaky", 1).map((x) => x.to)).toEqual(["INITIALIZING", "RUNNING", "COMPLETED"]);
    expect(h.groupStatus("flaky")).toBe("COMPLETED");
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("RESCHEDULE stops retrying at maxRetries: the last attempt's RESCHEDULE fails", async () => {
    const h = await startRun(workflow([group("flaky", task("flaky", 'exitActions: {RESCHEDULE: "1"}'))]), { maxRetries: 1 });
    await h.exit("flaky", 1);
    await h.exit("flaky", 1);
    expect(h.runtime.prepareCalls("flaky").map((l) => l.retryId)).toEqual([0, 1]);
    expect(h.task("flaky")).toMatchObject({ retryId: 1, status: "FAILED", exitCode: 1 });
    expect(h.finished).toEqual({ status: "FAILED" });
  });

  it("RESCHEDULE with maxRetries 0 fails at once", async () => {
    const h = await startRun(workflow([group("flaky", task("flaky", 'exitActions: {RESCHEDULE: "1"}'))]), { maxRetries: 0 });
    await h.exit("flaky", 1);
    expect(h.runtime.prepareCalls("flaky")).toHaveLength(1);
    expect(h.task("flaky")).toMatchObject({ retryId: 0, status: "FAILED", exitCode: 1 });
    expect(h.taskTransitions("flaky").some((x) => x.to === "RESCHEDULED")).toBe(false);
    expect(h.groupStatus("flaky")).toBe("FAILED");
    expect(h.finished).toEqual({ status: "FAILED" });
  });

  it("rescheduling the lead restarts its siblings: they are stopped and get new attempts, released together again", async () => {
    const yaml = workflow([group("pair", task("lead", 'lead: true, exitActions: {RESCHEDULE: "1"}'), task("helper"))]);
    const h = await startRun(yaml, { maxRetries: 1 });
    const oldHelper = h.runtime.member("helper", 0);
    h.clock.advance(500);
    await h.exit("lead", 1);

    expect(oldHelper.stops).toHaveLength(1);
    expect(h.taskTransitions("helper", 0).map((x) => x.to)).toContain("RESCHEDULED");
    expect(h.runtime.prepareCalls("lead").map((l) => l.retryId)).toEqual([0, 1]);
    expect(h.runtime.prepareCalls("helper").map((l) => l.retryId)).toEqual([0, 1]);
    const lead1 = h.runtime.member("lead", 1);
    const helper1 = h.runtime.member("helper", 1);
    expect(lead1.releasedAt).toBe(h.clock.now());
    expect(helper1.releasedAt).toBe(lead1.releasedAt);
    expect(h.task("helper")).toMatchObject({ retryId: 1, status: "RUNNING" });
    expect(h.groupStatus("pair")).toBe("RUNNING");

    await h.exit("lead", 0);
    expect(h.task("lead")).toMatchObject({ retryId: 1, status: "COMPLETED" });
    expect(h.task("helper")).toMatchObject({ retryId: 1, status: "COMPLETED" });
    expect(helper1.stops).toHaveLength(1);
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("with `ignoreNonleadStatus: false`, a non-lead's RESCHEDULE restarts the whole group", async () => {
    const yaml = workflow([
      groupWith("pair", "ignoreNonleadStatus: false", task("lead", "lead: true"), task("helper", 'exitActions: {RESCHEDULE: "1"}')),
    ]);
    const h = await startRun(yaml, { maxRetries: 1 });
    const lead0 = h.runtime.member("lead", 0);
    await h.exit("helper", 1);
    expect(lead0.stops).toHaveLength(1);
    expect(h.runtime.prepareCalls("lead").map((l) => l.retryId)).toEqual([0, 1]);
    expect(h.runtime.prepareCalls("helper").map((l) => l.retryId)).toEqual([0, 1]);
    expect(h.runtime.member("lead", 1).releasedAt).toBe(h.runtime.member("helper", 1).releasedAt);
    expect(h.groupStatus("pair")).toBe("RUNNING");
  });

  it("cancel while a rescheduled lead waits for its siblings to stop leaves no task as RESCHEDULED", async () => {
    const yaml = workflow([group("pair", task("lead", 'lead: true, exitActions: {RESCHEDULE: "1"}'), task("helper"))]);
    const h = await startRun(yaml, { maxRetries: 1 }, (r) => (r.exitOnStop = false));
    await h.exit("lead", 1);
    // The helper is being stopped; the new attempts start only once it is gone.
    expect(h.runtime.member("helper", 0).stops).toHaveLength(1);
    expect(h.runtime.prepareCalls("lead")).toHaveLength(1);
    h.run.cancel();
    await flush();
    h.runtime.member("helper", 0).exit(143);
    await flush();
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
    expect(h.groupStatus("pair")).toBe("FAILED_CANCELED");
    expect(h.runtime.prepareCalls("lead")).toHaveLength(1);
    expect(h.task("lead").status).toBe("FAILED_CANCELED");
    expect(h.task("helper").status).toBe("FAILED_CANCELED");
  });

  it("where members restart in place, the lead's RESCHEDULE restarts its sibling's command in its sandbox: same attempt, released with the new lead", async () => {
    const yaml = workflow([group("pair", task("lead", 'lead: true, exitActions: {RESCHEDULE: "1"}'), task("helper"))]);
    const h = await startRun(yaml, { maxRetries: 1 }, (r) => (r.restartsInPlace = true));
    const helper = h.runtime.member("helper", 0);
    h.clock.advance(500);
    await h.exit("lead", 1);

    expect(helper.restarts).toEqual([GRACE]);
    expect(helper.stops).toEqual([]);
    expect(h.runtime.prepareCalls("helper").map((l) => l.retryId)).toEqual([0]);
    expect(h.runtime.prepareCalls("lead").map((l) => l.retryId)).toEqual([0, 1]);
    expect(helper.releasedAt).toBe(h.runtime.member("lead", 1).releasedAt);
    expect(h.attempts("helper")).toHaveLength(1);
    expect(h.taskTransitions("helper", 0).map((x) => [x.from, x.to, x.reason])).toEqual([
      ["SUBMITTING", "WAITING", "waiting for upstream groups"],
      ["WAITING", "SCHEDULING", "waiting for resources"],
      ["SCHEDULING", "INITIALIZING", "preparing its sandbox"],
      ["INITIALIZING", "RUNNING", "command started"],
      ["RUNNING", "RUNNING", "lead was rescheduled: command stopped, to restart in place (its sandbox and files kept)"],
      ["RUNNING", "RUNNING", "command restarted in place"],
    ]);
    // The attempt keeps its start time (OSMO's record: the pod goes on).
    expect(h.task("helper").startTime).toBe(h.clock.now() - 500);

    await h.exit("lead", 0);
    expect(h.task("helper")).toMatchObject({ retryId: 0, status: "COMPLETED" });
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("a sibling whose command ended before its restart took effect ends as its exit says; the new attempt is released without it", async () => {
    const yaml = workflow([
      groupWith("pair", "ignoreNonleadStatus: false", task("lead", "lead: true"), task("helper", 'exitActions: {RESCHEDULE: "1"}')),
    ]);
    const h = await startRun(yaml, { maxRetries: 1 }, (r) => ((r.restartsInPlace = true), (r.autoRestart = false)));
    const lead = h.runtime.member("lead", 0);
    await h.exit("helper", 1);
    expect(lead.restarts).toEqual([GRACE]);
    lead.exit(0);
    lead.finishRestart!(false);
    await flush();
    expect(h.task("lead")).toMatchObject({ retryId: 0, status: "COMPLETED", exitCode: 0 });
    expect(h.groupStatus("pair")).toBe("COMPLETED");
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("cancel while a sibling waits for its restart: it is stopped, never released again", async () => {
    const yaml = workflow([group("pair", task("lead", 'lead: true, exitActions: {RESCHEDULE: "1"}'), task("helper"))]);
    const h = await startRun(yaml, { maxRetries: 1 }, (r) => ((r.restartsInPlace = true), (r.autoRestart = false)));
    const helper = h.runtime.member("helper", 0);
    await h.exit("lead", 1);
    h.run.cancel();
    await flush();
    expect(helper.stops).toHaveLength(1);
    helper.finishRestart!(true);
    await flush();
    expect(helper.releasedAt).toBeUndefined();
    expect(h.task("helper").status).toBe("FAILED_CANCELED");
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
  });

  it("a non-lead's RESCHEDULE (ignoreNonleadStatus default) restarts only that member", async () => {
    const yaml = workflow([group("pair", task("lead", "lead: true"), task("helper", 'exitActions: {RESCHEDULE: "1"}'))]);
    const h = await startRun(yaml, { maxRetries: 1 });
    const lead0 = h.runtime.member("lead", 0);
    await h.exit("helper", 1);
    expect(h.runtime.prepareCalls("helper").map((l) => l.retryId)).toEqual([0, 1]);
    expect(h.runtime.prepareCalls("lead").map((l) => l.retryId)).toEqual([0]);
    expect(lead0.stops).toEqual([]);
    expect(h.task("lead")).toMatchObject({ retryId: 0, status: "RUNNING" });
    expect(h.task("helper")).toMatchObject({ retryId: 1, status: "RUNNING" });
    expect(h.runtime.member("helper", 1).releasedAt).toBeDefined();
  });
});

describe("upstream failures", () => {
  const chain = workflow([
    group("a", task("ta")),
    group("b", task("tb", "inputs: [{task: ta}]")),
    group("c", task("tc", "inputs: [{task: tb}]")),
    group("d", task("td")),
  ]);

  it("a -> b -> c: when b fails, c is FAILED_UPSTREAM with exit code 3000 while the independent d completes", async () => {
    const h = await startRun(chain);
    // a and d start at once; b and c wait.
    expect(h.runtime.prepares.map((p) => p.launch.taskName).sort()).toEqual(["ta", "td"]);
    expect(h.groupStatus("b")).toBe("WAITING");

    await h.exit("ta", 0);
    expect(h.groupStatus("b")).toBe("RUNNING");
    expect(h.runtime.member("tb").launch.inputDirs).toEqual([h.runtime.member("ta").launch.outputDir]);

    await h.exit("tb", 1);
    expect(h.groupStatus("b")).toBe("FAILED");
    expect(h.groupStatus("c")).toBe("FAILED_UPSTREAM");
    expect(h.task("tc")).toMatchObject({ status: "FAILED_UPSTREAM", exitCode: 3000 });
    expect(h.runtime.hasMember("tc")).toBe(false);
    expect(h.runtime.prepareCalls("tc")).toEqual([]);

    // The sibling branch goes on.
    expect(h.groupStatus("d")).toBe("RUNNING");
    expect(h.finished).toBeUndefined();
    await h.exit("td", 0);
    expect(h.groupStatus("d")).toBe("COMPLETED");
    expect(h.finished).toEqual({ status: "FAILED" });
    expect(h.recorder.run.status).toBe("FAILED");
  });

  it("a failing head fails the whole chain below it", async () => {
    const h = await startRun(chain);
    await h.exit("ta", 2);
    expect(h.groupStatus("b")).toBe("FAILED_UPSTREAM");
    expect(h.groupStatus("c")).toBe("FAILED_UPSTREAM");
    expect(h.task("tb").exitCode).toBe(3000);
    expect(h.task("tc").exitCode).toBe(3000);
    expect(h.groupStatus("d")).toBe("RUNNING");
  });
});

describe("timeouts", () => {
  it("exec timeout stops a running task as FAILED_EXEC_TIMEOUT (not a moment before) and fails its downstream", async () => {
    const yaml = workflow(
      [group("slow", task("slow")), group("after", task("after", "inputs: [{task: slow}]"))],
      ["  timeout: {exec_timeout: 10s}"],
    );
    const h = await startRun(yaml, {}, (r) => (r.autoPrepare = false));
    h.clock.advance(3_000);
    // The clock starts at RUNNING, not at admission.
    h.runtime.pending("slow").resolve();
    await flush();
    const runningAt = h.clock.now();
    expect(h.clock.nextDue()).toBe(runningAt + 10_000);

    h.clock.advance(9_999);
    h.clock.fireAll(); // even a timer that fires early must not time out
    await flush();
    expect(h.task("slow").status).toBe("RUNNING");
    expect(h.runtime.member("slow").stops).toEqual([]);

    h.clock.advance(1);
    h.clock.fireAll();
    await flush();
    expect(h.task("slow").status).toBe("FAILED_EXEC_TIMEOUT");
    expect(h.groupStatus("slow")).toBe("FAILED_EXEC_TIMEOUT");
    expect(h.runtime.member("slow").stops.map((s) => s.graceMs)).toEqual([GRACE]);
    expect(h.groupStatus("after")).toBe("FAILED_UPSTREAM");
    expect(h.task("after")).toMatchObject({ status: "FAILED_UPSTREAM", exitCode: 3000 });
    expect(h.finished).toEqual({ status: "FAILED_EXEC_TIMEOUT" });
    expect(h.clock.timers.size).toBe(0);
  });

  it("the exec timer fires by itself at the deadline", async () => {
    const yaml = workflow([group("slow", task("slow"))], ["  timeout: {exec_timeout: 2s}"]);
    const h = await startRun(yaml);
    h.clock.advance(1_999);
    await flush();
    expect(h.task("slow").status).toBe("RUNNING");
    h.clock.advance(1);
    await flush();
    expect(h.task("slow").status).toBe("FAILED_EXEC_TIMEOUT");
  });

  const queued = workflow(
    [group("hog", task("hog", "resource: one")), group("starved", task("starved", "resource: one"))],
    ["  timeout: {queue_timeout: 30s}", "  resources:", "    one: {cpu: 1}"],
  );
  const oneCpu = { capacity: { cpu: 1, gpu: 0, memoryBytes: 1024 ** 3 } };

  it("queue timeout fails a group when capacity never frees", async () => {
    const h = await startRun(queued, oneCpu);
    expect(h.groupStatus("hog")).toBe("RUNNING");
    expect(h.groupStatus("starved")).toBe("SCHEDULING");
    expect(h.clock.nextDue()).toBe(h.clock.now() + 30_000);

    h.clock.advance(29_999);
    h.clock.fireAll();
    await flush();
    expect(h.groupStatus("starved")).toBe("SCHEDULING");

    h.clock.advance(1);
    h.clock.fireAll();
    await flush();
    expect(h.groupStatus("starved")).toBe("FAILED_QUEUE_TIMEOUT");
    expect(h.task("starved").status).toBe("FAILED_QUEUE_TIMEOUT");
    expect(h.lastTaskTransition("starved").reason).toBe("waited longer than the queue timeout (30s) for resources");
    expect(h.runtime.prepareCalls("starved")).toEqual([]);
    expect(h.finished).toBeUndefined();

    await h.exit("hog", 0);
    expect(h.finished).toEqual({ status: "FAILED_QUEUE_TIMEOUT" });
    expect(h.clock.timers.size).toBe(0);
  });

  it("a queued group is admitted once the group holding the capacity has ended", async () => {
    const h = await startRun(queued, oneCpu);
    h.clock.advance(10_000);
    await h.exit("hog", 0);
    expect(h.groupStatus("starved")).toBe("RUNNING");
    // Its addresses went back to the runtime once nothing of the group was left.
    expect(h.runtime.releasedAddresses).toEqual([[h.runtime.member("hog").launch.address]]);
    h.clock.advance(25_000);
    await flush();
    expect(h.groupStatus("starved")).toBe("RUNNING");
    await h.exit("starved", 0);
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("maxParallel holds the next group back until the tasks of the running one are gone", async () => {
    const h = await startRun(workflow([group("first", task("first")), group("second", task("second"))]), { maxParallel: 1 });
    expect(h.runtime.prepareCalls("second")).toEqual([]);
    expect(h.groupStatus("second")).toBe("SCHEDULING");
    await h.exit("first", 0);
    expect(h.runtime.prepareCalls("second")).toHaveLength(1);
    expect(h.groupStatus("second")).toBe("RUNNING");
  });

  it("capacity is held until every member of an ended group has exited", async () => {
    const yaml = workflow(
      [
        groupWith("pair", "barrier: true", task("lead", "lead: true, resource: one"), task("helper")),
        group("next", task("next", "resource: one")),
      ],
      ["  resources:", "    one: {cpu: 1}"],
    );
    const h = await startRun(yaml, oneCpu, (r) => (r.exitOnStop = false));
    await h.exit("lead", 0);
    expect(h.groupStatus("pair")).toBe("COMPLETED");
    expect(h.runtime.member("helper").stops).toHaveLength(1);
    expect(h.groupStatus("next")).toBe("SCHEDULING");
    await h.exit("helper", 143);
    expect(h.groupStatus("next")).toBe("RUNNING");
  });
});

describe("start errors", () => {
  it("a prepare() that rejects gives FAILED_START_ERROR with exit code 3003", async () => {
    const h = await startRun(
      workflow([group("broken", task("broken")), group("after", task("after", "inputs: [{task: broken}]"))]),
      {},
      (r) => r.failPrepare.add("broken"),
    );
    expect(h.task("broken")).toMatchObject({ status: "FAILED_START_ERROR", exitCode: 3003 });
    expect(h.lastTaskTransition("broken").reason).toContain("no sandbox for broken");
    expect(h.groupStatus("broken")).toBe("FAILED_START_ERROR");
    expect(h.groupStatus("after")).toBe("FAILED_UPSTREAM");
    expect(h.finished).toEqual({ status: "FAILED_START_ERROR" });
  });

  it("a lead that cannot start fails its group and stops the members that did come up", async () => {
    const h = await startRun(trio(), {}, (r) => r.failPrepare.add("lead"));
    expect(h.task("lead")).toMatchObject({ status: "FAILED_START_ERROR", exitCode: 3003 });
    expect(h.task("worker-1").status).toBe("FAILED");
    expect(h.runtime.members.every((m) => m.releasedAt === undefined)).toBe(true);
    expect(h.runtime.members.every((m) => m.stops.length === 1)).toBe(true);
    expect(h.finished).toEqual({ status: "FAILED_START_ERROR" });
  });

  it("an exit reported with a startError is FAILED_START_ERROR with 3003", async () => {
    const h = await startRun(workflow([group("g", task("t"))]));
    h.runtime.member("t").exit(127, "sh: not found");
    await flush();
    expect(h.task("t")).toMatchObject({ status: "FAILED_START_ERROR", exitCode: 3003 });
    expect(h.lastTaskTransition("t").reason).toContain("sh: not found");
  });

  it("a url input the engine cannot stage fails the task instead of hanging the run", async () => {
    const h = await startRun(workflow([group("g", task("fetch", "inputs: [{url: 's3://bucket/data'}]"))]));
    expect(isFailure(h.task("fetch").status ?? "")).toBe(true);
    expect(h.finished).toBeDefined();
    expect(isFailure(h.finished!.status)).toBe(true);
  });
});

describe("cancel", () => {
  const yaml = workflow([
    group("first", task("lead", "lead: true"), task("helper")),
    group("second", task("second", "inputs: [{task: lead}]")),
  ]);

  it("marks unfinished groups and tasks FAILED_CANCELED and stops running members with the grace period", async () => {
    const h = await startRun(yaml);
    h.run.cancel();
    await flush();
    for (const name of ["first", "second"]) expect(h.groupStatus(name)).toBe("FAILED_CANCELED");
    for (const name of ["lead", "helper", "second"]) expect(h.task(name).status).toBe("FAILED_CANCELED");
    expect(h.runtime.member("lead").stops.map((s) => s.graceMs)).toEqual([GRACE]);
    expect(h.runtime.member("helper").stops.map((s) => s.graceMs)).toEqual([GRACE]);
    expect(h.runtime.prepareCalls("second")).toEqual([]);
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
    expect(h.recorder.run.status).toBe("FAILED_CANCELED");
  });

  it("cancel(true) stops with no grace", async () => {
    const h = await startRun(yaml);
    h.run.cancel(true);
    await flush();
    expect(h.runtime.member("lead").stops.map((s) => s.graceMs)).toEqual([0]);
    expect(h.runtime.member("helper").stops.map((s) => s.graceMs)).toEqual([0]);
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
  });

  it("a second, forced cancel kills what the first one is still stopping", async () => {
    const h = await startRun(yaml, {}, (r) => (r.exitOnStop = false));
    h.run.cancel();
    await flush();
    expect(h.finished).toBeUndefined();
    h.run.cancel(true);
    await flush();
    expect(h.runtime.member("lead").stops.map((s) => s.graceMs)).toEqual([GRACE, 0]);
    h.runtime.member("lead").exit(137);
    h.runtime.member("helper").exit(137);
    await flush();
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
  });

  it("leaves finished groups as they are", async () => {
    const h = await startRun(workflow([group("done", task("done")), group("busy", task("busy"))]));
    await h.exit("done", 0);
    h.run.cancel();
    await flush();
    expect(h.groupStatus("done")).toBe("COMPLETED");
    expect(h.task("done").status).toBe("COMPLETED");
    expect(h.groupStatus("busy")).toBe("FAILED_CANCELED");
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
  });

  it("a member still being prepared when the run is canceled is stopped then (not once it comes up: it may never), never released", async () => {
    const h = await startRun(workflow([group("g", task("t"))]), {}, (r) => (r.autoPrepare = false));
    h.run.cancel();
    await flush();
    expect(h.task("t").status).toBe("FAILED_CANCELED");
    // The stop reaches the pool now, which ends the member (runtime/local-pool.ts): the run does not wait for its sandbox.
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
    const member = h.runtime.pending("t").resolve();
    await flush();
    // Its sandbox, come up after all, is stopped and never released.
    expect(member.releasedAt).toBeUndefined();
    expect(member.stops.length).toBeGreaterThan(0);
  });
});

describe("the end of a run", () => {
  it("`done` resolves only after every member's `exited` has resolved", async () => {
    const h = await startRun(trio(), {}, (r) => (r.exitOnStop = false));
    await h.exit("lead", 0);
    expect(h.groupStatus("trio")).toBe("COMPLETED");
    expect(h.runtime.member("worker-1").stops).toHaveLength(1);
    expect(h.finished).toBeUndefined();
    h.runtime.member("worker-1").exit(143);
    await flush();
    expect(h.finished).toBeUndefined();
    h.runtime.member("worker-2").exit(143);
    await flush();
    expect(h.finished).toEqual({ status: "COMPLETED" });
    // The stopped worker keeps the lead's outcome.
    expect(h.task("worker-2").status).toBe("COMPLETED");
  });

  it("after cancel, `done` also waits for the stopped members", async () => {
    const h = await startRun(trio(), {}, (r) => (r.exitOnStop = false));
    h.run.cancel();
    await flush();
    expect(h.finished).toBeUndefined();
    for (const m of h.runtime.members) m.exit(143);
    await flush();
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
  });

  it("records a legal sequence of transitions for a task, its group and the run", async () => {
    const h = await startRun(workflow([group("solo", task("solo"))]));
    h.clock.advance(10);
    await h.exit("solo", 0);
    const steps = h.taskTransitions("solo");
    expect([steps[0]!.from, ...steps.map((x) => x.to)]).toEqual([
      "SUBMITTING",
      "WAITING",
      "SCHEDULING",
      "INITIALIZING",
      "RUNNING",
      "COMPLETED",
    ]);
    const chain = (xs: Transition[]) => xs.forEach((x, i) => i > 0 && expect(x.from).toBe(xs[i - 1]!.to));
    chain(steps);
    for (const x of h.recorder.transitions) {
      expect(() => checkTransition("x", x.from, x.to)).not.toThrow();
      expect(x.reason).not.toBe("");
    }
    const times = h.recorder.transitions.map((x) => x.time);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(steps[steps.length - 1]!.time).toBe(1_000_010);

    const groupSteps = h.groupTransitions("solo");
    expect([groupSteps[0]!.from, ...groupSteps.map((x) => x.to)]).toEqual([
      "SUBMITTING",
      "WAITING",
      "SCHEDULING",
      "INITIALIZING",
      "RUNNING",
      "COMPLETED",
    ]);
    chain(groupSteps);
    const runSteps = h.recorder.transitions.filter((x) => x.subject.kind === "run");
    expect(runSteps.map((x) => [x.from, x.to])).toEqual([
      ["PENDING", "RUNNING"],
      ["RUNNING", "COMPLETED"],
    ]);
    expect(h.recorder.run).toMatchObject({ status: "COMPLETED", startTime: 1_000_000, endTime: 1_000_010 });
  });

  it("every recorded transition of a rescheduled, upstream-failed and canceled run is legal and chained per attempt", async () => {
    const yaml = workflow([
      group("a", task("ta", 'exitActions: {RESCHEDULE: "1"}')),
      group("b", task("tb", "inputs: [{task: ta}]")),
      group("c", task("tc")),
    ]);
    const h = await startRun(yaml, { maxRetries: 2 });
    await h.exit("ta", 1);
    await h.exit("ta", 2);
    h.run.cancel();
    await flush();
    expect(h.finished).toEqual({ status: "FAILED_CANCELED" });
    const bySubject = new Map<string, Transition[]>();
    for (const x of h.recorder.transitions) {
      const key = JSON.stringify(x.subject);
      bySubject.set(key, [...(bySubject.get(key) ?? []), x]);
    }
    for (const [key, xs] of bySubject) {
      xs.forEach((x, i) => {
        expect(() => checkTransition(key, x.from, x.to)).not.toThrow();
        if (i > 0) expect(x.from, key).toBe(xs[i - 1]!.to);
      });
    }
    expect(h.groupStatus("b")).toBe("FAILED_UPSTREAM");
    expect(h.groupStatus("c")).toBe("FAILED_CANCELED");
  });
});

describe("a restart", () => {
  it("takes over the groups that completed in the run it restarts: not run again, their outputs feed the rest", async () => {
    const yaml = workflow([group("a", task("ta")), group("b", task("tb", "inputs: [{task: ta}]"))]);
    const plan = await compileYaml(yaml);
    const a = plan.groups.findIndex((g) => g.name === "a-group");
    const reused = new Map([[a, { from: "wf-0", tasks: [{ outputDir: "/data/wf-0/outputs/ta/0", exitCode: 0 }] }]]);
    const h = await startRun(yaml, { reused });
    expect(h.runtime.prepareCalls("ta")).toEqual([]);
    expect(h.groupStatus("a")).toBe("COMPLETED");
    expect(h.task("ta")).toMatchObject({ status: "COMPLETED", exitCode: 0 });
    expect(h.taskTransitions("ta").at(-1)!.reason).toMatch(/completed in run wf-0/);
    expect(h.runtime.prepareCalls("tb").map((l) => l.inputDirs)).toEqual([["/data/wf-0/outputs/ta/0"]]);
    await h.exit("tb", 0);
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });
});

describe("resume (a run another troupe process was driving)", () => {
  // a -> b (lead b1, b2) -> c
  const chain = () =>
    workflow([
      group("a", task("a1")),
      group("b", task("b1", "lead: true, inputs: [{task: a1}]"), task("b2")),
      group("c", task("c1", "inputs: [{task: b1}]")),
    ]);
  const resumed = (b: { group: string; tasks: Array<[string, number]> }, c = "WAITING"): ResumedRun => ({
    reason: "the server restarted: run resumed",
    groups: [
      { status: "COMPLETED", startTime: 1_000, tasks: [{ status: "COMPLETED", retryId: 0, exitCode: 0, ip: "10.0.0.1" }] },
      {
        status: b.group as ResumedRun["groups"][number]["status"],
        startTime: 2_000,
        tasks: b.tasks.map(([status, retryId], i) => ({
          status: status as ResumedRun["groups"][number]["tasks"][number]["status"],
          retryId,
          exitCode: null,
          ip: `10.0.0.${i + 2}`,
        })),
      },
      { status: c as "WAITING", startTime: null, tasks: [{ status: c as "WAITING", retryId: 0, exitCode: null, ip: null }] },
    ],
  });

  it("re-attaches running attempts with their recorded addresses and inputs, prepares nothing again, and goes on downstream", async () => {
    const h = await startRun(chain(), {
      resume: resumed({
        group: "RUNNING",
        tasks: [
          ["RUNNING", 0],
          ["RUNNING", 1],
        ],
      }),
    });
    expect(h.runtime.events.filter((e) => e.startsWith("reattach"))).toEqual([
      "reattach a-group/a1/0",
      "reattach b-group/b1/0",
      "reattach b-group/b2/1",
    ]);
    // a1 had ended; whatever may be left of it is ended at once, and its record stays as it was.
    expect(h.runtime.member("a1").stops.map((s) => s.graceMs)).toEqual([0]);
    expect(h.taskTransitions("a1")).toEqual([]);
    expect(h.runtime.prepareCalls("b1")).toEqual([]);
    const b1 = h.runtime.member("b1").launch;
    expect(b1.hosts).toEqual({ b1: "10.0.0.2", b2: "10.0.0.3" });
    expect(b1.inputDirs).toEqual(["/data/wf-1/outputs/a1/0"]);
    expect(b1.logPath).toBe("/logs/b-group/b1/0.log");
    expect(h.recorder.transitions[0]).toMatchObject({
      subject: { kind: "run" },
      from: "RUNNING",
      to: "RUNNING",
      reason: "the server restarted: run resumed",
    });

    await h.exit("b1", 0);
    expect(h.groupStatus("b")).toBe("COMPLETED");
    expect(h.runtime.member("b2").stops.length).toBe(1);
    expect(h.runtime.prepareCalls("c1").map((l) => l.inputDirs)).toEqual([["/data/wf-1/outputs/b1/0"]]);
    await h.exit("c1", 0);
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("an attempt whose fate cannot be known fails FAILED_SERVER_ERROR with the platform code; the lead's failure fails its group and downstream", async () => {
    const h = await startRun(
      chain(),
      {
        resume: resumed({
          group: "RUNNING",
          tasks: [
            ["RUNNING", 0],
            ["RUNNING", 0],
          ],
        }),
      },
      (r) => r.lostOnReattach.add("b1"),
    );
    expect(h.task("b1")).toMatchObject({ status: "FAILED_SERVER_ERROR", exitCode: 3002 });
    expect(h.lastTaskTransition("b1").reason).toMatch(/how it ended is unknown/);
    expect(h.groupStatus("b")).toBe("FAILED_SERVER_ERROR");
    expect(h.runtime.member("b2").stops.length).toBe(1);
    expect(h.groupStatus("c")).toBe("FAILED_UPSTREAM");
    expect(h.finished).toEqual({ status: "FAILED_SERVER_ERROR" });
  });

  it("a re-attached attempt that ends `lost` fails FAILED_SERVER_ERROR with the runtime's reason", async () => {
    const h = await startRun(chain(), {
      resume: resumed({
        group: "RUNNING",
        tasks: [
          ["RUNNING", 0],
          ["COMPLETED", 0],
        ],
      }),
    });
    const member = h.runtime.member("b1");
    (member as unknown as { resolveExit(info: ExitInfo): void }).resolveExit({ code: 137, lost: "its keeper was killed" });
    await flush();
    expect(h.task("b1")).toMatchObject({ status: "FAILED_SERVER_ERROR", exitCode: 3002 });
    expect(h.lastTaskTransition("b1").reason).toBe("how it ended is unknown: its keeper was killed");
  });

  it("a group still preparing starts again in a new attempt; no command of it had started", async () => {
    const h = await startRun(chain(), {
      resume: resumed({
        group: "INITIALIZING",
        tasks: [
          ["INITIALIZING", 0],
          ["INITIALIZING", 0],
        ],
      }),
    });
    expect(h.attempts("b1").map((a) => [a.retryId, a.status])).toEqual([
      [0, "RESCHEDULED"],
      [1, "RUNNING"],
    ]);
    expect(h.runtime.prepareCalls("b2").map((l) => l.key)).toEqual(["b-group/b2/1"]);
    expect(h.runtime.member("b1", 1).releasedAt).toBeDefined();
    await h.exit("b1", 0);
    await h.exit("c1", 0);
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("a group still preparing beside a member that had ended is placed afresh: not on the addresses the ended member's re-attach names", async () => {
    // The earlier process's addresses are no lease of this runtime's (a container runtime has no network for them):
    // prepared on them, the group failed to start ("no network for 10.0.0.2").
    const h = await startRun(chain(), {
      resume: resumed({
        group: "INITIALIZING",
        tasks: [
          ["INITIALIZING", 0],
          ["FAILED_START_ERROR", 0],
        ],
      }),
    });
    // b2 had ended: whatever is left of it is found and stopped; b1 starts again in a new attempt.
    expect(h.runtime.events).toContain("reattach b-group/b2/0");
    const [b1] = h.runtime.prepareCalls("b1");
    expect(b1?.retryId).toBe(1);
    // The runtime's own allocation for the group (the fake's first), not the record's 10.0.0.2.
    expect(b1?.address).toBe("10.0.0.1");
    expect(b1?.hosts).toEqual({ b1: "10.0.0.1" });
  });

  it("a run whose start was never committed (killed right after the submission) starts: PENDING -> RUNNING, its groups wait and run", async () => {
    const submitting = { status: "SUBMITTING" as const, startTime: null };
    const task = { status: "SUBMITTING" as const, retryId: 0, exitCode: null, ip: null };
    const h = await startRun(chain(), {
      resume: {
        reason: "the server restarted: run resumed",
        status: "PENDING",
        groups: [
          { ...submitting, tasks: [task] },
          { ...submitting, tasks: [task, task] },
          // A big start's first batch committed, the next not: the group is WAITING, its task not yet.
          { status: "WAITING", startTime: null, tasks: [task] },
        ],
      },
    });
    expect(h.recorder.transitions[0]).toMatchObject({ subject: { kind: "run" }, from: "PENDING", to: "RUNNING" });
    expect(h.groupTransitions("b").map((x) => `${x.from}->${x.to}`)).toEqual(["SUBMITTING->WAITING"]);
    expect(h.taskTransitions("c1")[0]).toMatchObject({ from: "SUBMITTING", to: "WAITING" });
    expect(h.runtime.prepareCalls("a1").length).toBe(1);
    await h.exit("a1", 0);
    await h.exit("b1", 0);
    await h.exit("c1", 0);
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });

  it("waiting and scheduling groups are scheduled as usual; finished runs' groups are left as they are", async () => {
    const h = await startRun(chain(), {
      resume: resumed(
        {
          group: "COMPLETED",
          tasks: [
            ["COMPLETED", 0],
            ["COMPLETED", 0],
          ],
        },
        "SCHEDULING",
      ),
    });
    expect(h.runtime.prepareCalls("c1").length).toBe(1);
    expect(h.runtime.prepareCalls("b1")).toEqual([]);
    await h.exit("c1", 0);
    expect(h.finished).toEqual({ status: "COMPLETED" });
  });
});

describe("a pool shared by runs (the server's), ordered by priority", () => {
  const needing = (name: string, cpus: number) =>
    workflow([group(name, task(name, "resource: r"))], ["  resources:", `    r: {cpu: ${cpus}}`]);
  const twoCpus = () => new SharedPool({ cpu: 2, gpu: 0, memoryBytes: 1024 ** 3 }, 100);

  it("counts every run's groups against the same capacity", async () => {
    const pool = twoCpus();
    const a = await startRun(needing("a", 2), { pool });
    const b = await startRun(needing("b", 1), { pool });
    expect(a.groupStatus("a")).toBe("RUNNING");
    expect(b.groupStatus("b")).toBe("SCHEDULING"); // alone, each would fit its own copy of the pool
    await a.exit("a", 0);
    await flush();
    expect(b.groupStatus("b")).toBe("RUNNING");
    expect(pool.ledger.used.cpu).toBe(1);
    await b.exit("b", 0);
    expect(pool.ledger.used.cpu).toBe(0);
  });

  it("a LOW run takes no free capacity while a HIGH run waits for more: the HIGH one goes first", async () => {
    const pool = twoCpus();
    const holder = await startRun(needing("holder", 1), { pool, priority: "NORMAL" });
    const high = await startRun(needing("high", 2), { pool, priority: "HIGH" });
    const low = await startRun(needing("low", 1), { pool, priority: "LOW" });
    expect(high.groupStatus("high")).toBe("SCHEDULING");
    expect(low.groupStatus("low")).toBe("SCHEDULING"); // one cpu is free, but HIGH waits for two
    expect(low.runtime.prepareCalls("low")).toEqual([]);

    await holder.exit("holder", 0);
    await flush();
    expect(high.groupStatus("high")).toBe("RUNNING");
    expect(low.groupStatus("low")).toBe("SCHEDULING");
    await high.exit("high", 0);
    await flush();
    expect(low.groupStatus("low")).toBe("RUNNING");
  });

  it("runs of the same priority share the pool as it comes", async () => {
    const pool = twoCpus();
    const first = await startRun(needing("first", 2), { pool });
    const waiting = await startRun(needing("waiting", 2), { pool });
    const small = await startRun(needing("small", 1), { pool });
    expect(waiting.groupStatus("waiting")).toBe("SCHEDULING");
    expect(small.groupStatus("small")).toBe("SCHEDULING");
    await first.exit("first", 0);
    await flush();
    expect([waiting.groupStatus("waiting"), small.groupStatus("small")].filter((s) => s === "RUNNING").length).toBe(1);
  });
});

describe("durable starts (the server: its tasks outlive it)", () => {
  it("commits the RUNNING records of a group's members before any of them is released", async () => {
    let runtime: FakeRuntime | undefined;
    const atFlush: Array<{ running: number; released: number }> = [];
    const recorder = Object.assign(new MemoryRecorder(), {
      flush(this: MemoryRecorder) {
        atFlush.push({
          running: this.transitions.filter((x) => x.subject.kind === "task" && x.to === "RUNNING").length,
          released: runtime!.members.filter((m) => m.releasedAt !== undefined).length,
        });
      },
    });
    const pair = workflow([groupWith("pair", "barrier: true", task("lead", "lead: true"), task("helper"))]);
    const h = await startRun(pair, { durableStarts: true, recorder }, (r) => (runtime = r));
    expect(atFlush).toEqual([{ running: 2, released: 0 }]);
    expect(h.runtime.members.every((m) => m.releasedAt !== undefined)).toBe(true);

    atFlush.length = 0;
    await startRun(pair, { recorder }, (r) => (runtime = r));
    expect(atFlush).toEqual([]); // troupe run: writes stay batched
  });
});

describe("GPUs: each task has its own", () => {
  const gpuResources = ["  resources:", "    one: {cpu: 1, gpu: 1}", "    two: {cpu: 1, gpu: 2}"];
  const devices = (h: Harness, name: string) => h.runtime.member(name).launch.gpuDevices;

  it("gives every task as many of the pool's GPUs as it asked for, none shared, and takes them back when its group ends", async () => {
    const yaml = workflow(
      [
        group("pair", task("a", "resource: one, lead: true"), task("b", "resource: two")),
        group("single", task("c", "resource: one")),
        group("cpu", task("plain")),
        group("later", task("d", "resource: two, lead: true"), task("e", "inputs: [{task: c}]")),
      ],
      gpuResources,
    );
    const h = await startRun(yaml, { capacity: { cpu: 64, gpu: 4, memoryBytes: 1024 ** 4 } });
    expect(devices(h, "a")).toEqual([0]);
    expect(devices(h, "b")).toEqual([1, 2]);
    expect(devices(h, "c")).toEqual([3]);
    expect(devices(h, "plain")).toEqual([]);
    await h.exit("c", 0);
    await flush();
    // The pair still holds three of the four: d (two) waits for them.
    expect(h.groupStatus("later")).toBe("SCHEDULING");
    await h.exit("a", 0);
    await h.exit("b", 0);
    await flush();
    expect(h.groupStatus("later")).toBe("RUNNING");
    expect(devices(h, "d")).toEqual([0, 1]);
    expect(devices(h, "e")).toEqual([]);
  });

  it("a retried task keeps its GPUs (its group holds them)", async () => {
    const yaml = workflow(
      [group("solo", task("first", "resource: one, lead: true"), task("retried", 'resource: one, exitActions: {RESCHEDULE: "1"}'))],
      gpuResources,
    );
    const h = await startRun(yaml, { capacity: { cpu: 64, gpu: 2, memoryBytes: 1024 ** 4 }, maxRetries: 1 });
    expect(devices(h, "retried")).toEqual([1]);
    await h.exit("retried", 1);
    await flush();
    const attempts = h.runtime.members.filter((m) => m.launch.taskName === "retried");
    expect(attempts.map((m) => m.launch.retryId)).toEqual([0, 1]);
    expect(attempts[1]!.launch.gpuDevices).toEqual([1]);
  });

  it("runs sharing a pool (the server's) share its GPUs, each task its own", async () => {
    const pool = new SharedPool({ cpu: 8, gpu: 2, memoryBytes: 1024 ** 3 }, 100);
    const needing = (name: string) => workflow([group(name, task(name, "resource: one"))], gpuResources);
    const first = await startRun(needing("first"), { pool });
    const second = await startRun(needing("second"), { pool });
    const third = await startRun(needing("third"), { pool });
    expect([devices(first, "first"), devices(second, "second")]).toEqual([[0], [1]]);
    expect(third.groupStatus("third")).toBe("SCHEDULING");
    await first.exit("first", 0);
    await flush();
    expect(devices(third, "third")).toEqual([0]);
  });

  it("records which GPUs a group has; a resumed run's running members keep theirs, and no one else is given them", async () => {
    const yaml = workflow([group("held", task("held", "resource: one")), group("fresh", task("fresh", "resource: one"))], gpuResources);
    const first = await startRun(yaml, { capacity: { cpu: 64, gpu: 2, memoryBytes: 1024 ** 4 } });
    expect(first.recorder.groups.get(0)?.gpus).toEqual([[0]]);
    expect(first.recorder.groups.get(1)?.gpus).toEqual([[1]]);
    await first.exit("held", 0);
    expect(first.recorder.groups.get(0)?.gpus).toBeNull(); // given back, and recorded so

    // The server restarted while `held` ran on GPU 1 (the lowest free would be 0): it keeps 1, and `fresh` gets 0.
    const resume: ResumedRun = {
      reason: "the server restarted: run resumed",
      groups: [
        { status: "RUNNING", startTime: 2_000, gpus: [[1]], tasks: [{ status: "RUNNING", retryId: 0, exitCode: null, ip: "10.0.0.2" }] },
        { status: "WAITING", startTime: null, tasks: [{ status: "WAITING", retryId: 0, exitCode: null, ip: null }] },
      ],
    };
    const h = await startRun(yaml, { capacity: { cpu: 64, gpu: 2, memoryBytes: 1024 ** 4 }, resume });
    expect(devices(h, "held")).toEqual([1]);
    expect(devices(h, "fresh")).toEqual([0]);
  });

  it("a resumed run gives a group it prepares again none of the GPUs its running groups are on, whatever their order", async () => {
    const yaml = workflow(
      [group("preparing", task("again", "resource: one")), group("running", task("on", "resource: one"))],
      gpuResources,
    );
    const resume: ResumedRun = {
      reason: "the server restarted: run resumed",
      groups: [
        { status: "INITIALIZING", startTime: null, tasks: [{ status: "INITIALIZING", retryId: 0, exitCode: null, ip: null }] },
        { status: "RUNNING", startTime: 2_000, gpus: [[0]], tasks: [{ status: "RUNNING", retryId: 0, exitCode: null, ip: "10.0.0.3" }] },
      ],
    };
    const h = await startRun(yaml, { capacity: { cpu: 64, gpu: 2, memoryBytes: 1024 ** 4 }, resume });
    expect(devices(h, "on")).toEqual([0]);
    expect(h.runtime.prepareCalls("again").map((l) => l.gpuDevices)).toEqual([[1]]);
  });

  it("GPUs a server holds for a run it resumes are given to no other run meanwhile, and taken back by it", async () => {
    const pool = new SharedPool({ cpu: 8, gpu: 2, memoryBytes: 1024 ** 3 }, 100);
    pool.gpuDevices.hold([[1]]);
    const needing = (name: string) => workflow([group(name, task(name, "resource: one"))], gpuResources);
    const other = await startRun(needing("other"), { pool });
    const waiting = await startRun(needing("waiting"), { pool });
    expect(devices(other, "other")).toEqual([0]);
    expect(waiting.groupStatus("waiting")).toBe("SCHEDULING"); // GPU 1 is held, though no run has reserved it yet
    const resume: ResumedRun = {
      reason: "the server restarted: run resumed",
      groups: [
        { status: "RUNNING", startTime: 2_000, gpus: [[1]], tasks: [{ status: "RUNNING", retryId: 0, exitCode: null, ip: "10.0.0.2" }] },
      ],
    };
    const resumed = await startRun(needing("resumed"), { pool, resume });
    expect(devices(resumed, "resumed")).toEqual([1]);
    await other.exit("other", 0);
    await flush();
    expect(devices(waiting, "waiting")).toEqual([0]);

    // Held GPUs a resumed run never took (it could not start) go back.
    const spare = new SharedPool({ cpu: 8, gpu: 1, memoryBytes: 1024 ** 3 }, 100);
    spare.gpuDevices.hold([[0]]);
    spare.gpuDevices.unhold([[0]]);
    const after = await startRun(needing("after"), { pool: spare });
    expect(devices(after, "after")).toEqual([0]);
  });
});
