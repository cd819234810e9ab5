/**
 * The engine against a pool that speaks the port as a cluster does
 * (placement "cluster"): members placed late and in any order, a release
 * that fails, members evicted, preempted or never ready. The pool is an
 * in-memory fake driven by the test (no cluster here: the conformance suite
 * runs real processes; Slurm and Kubernetes bring real clusters); the clock
 * is the engine tests' fake.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { WorkflowRun, type ResumedRun, type RunOptions, type RunResult } from "../../src/engine/index.js";
import type {
  GroupHandle,
  GroupListener,
  GroupRef,
  MemberOutcome,
  MemberRef,
  RunSession,
  StartTimes,
  TaskLaunch,
} from "../../src/port/index.js";
import { FakeClock, MemoryRecorder, flush } from "./fakes.js";
import { compileYaml, locateTask } from "./plan-helpers.js";

/** One group as the fake cluster holds it: what it was asked, and the listener to answer. */
class FakeGroup implements GroupHandle {
  readonly placeAsked: MemberRef[] = [];
  readonly launches = new Map<string, TaskLaunch>();
  readonly released: string[] = [];
  readonly stopped: Array<{ key: string; graceMs: number }> = [];
  failRelease?: string;
  /** When the cluster says each released command started (its nodes' clocks), by key. */
  startTimes?: Map<string, number>;
  closed = 0;

  constructor(
    readonly id: string,
    readonly ref: GroupRef,
    readonly listener: GroupListener,
  ) {}

  place(members: readonly MemberRef[]): void {
    this.placeAsked.push(...members);
  }
  prepare(launch: TaskLaunch): void {
    this.launches.set(launch.key, launch);
  }
  async release(keys: readonly string[]): Promise<StartTimes | void> {
    if (this.failRelease) throw new Error(this.failRelease);
    this.released.push(...keys);
    return this.startTimes;
  }
  async stop(key: string, graceMs: number): Promise<void> {
    this.stopped.push({ key, graceMs });
  }
  async restart(): Promise<boolean> {
    return false;
  }
  canRestart(): boolean {
    return false;
  }
  /** The launches re-attached, and which the cluster still has (by task name). */
  readonly reattached: TaskLaunch[] = [];
  readonly stillThere = new Set<string>();
  async reattach(launch: TaskLaunch): Promise<boolean> {
    this.reattached.push(launch);
    return this.stillThere.has(launch.taskName);
  }
  /** What each attempt prints, as the cluster streams it. */
  readonly output = new Map<string, string[]>();
  logs(key: string): Readable {
    const lines = this.output.get(key);
    if (!lines) throw new Error(`no output for ${key} in the fake cluster`);
    return Readable.from(lines.map((line) => Buffer.from(`${line}\n`)));
  }
  async close(): Promise<void> {
    this.closed++;
  }

  // ---- the test's side: what the cluster does ----
  placeMember(task: string, retryId = 0, address = `10.9.0.${this.ref.members.indexOf(task) + 1}`): void {
    this.listener.placed(this.key(task, retryId), { address, hostName: `${task}.cluster.example`, node: `node-${task}` });
  }
  ready(task: string, retryId = 0): void {
    this.listener.ready(this.key(task, retryId));
  }
  end(task: string, outcome: MemberOutcome, retryId = 0): void {
    this.listener.exited(this.key(task, retryId), outcome);
  }
  key(task: string, retryId = 0): string {
    return `${this.ref.name}/${task}/${retryId}`;
  }
}

class FakeCluster implements RunSession {
  readonly groups = new Map<string, FakeGroup>();
  private next = 1;
  /** What a group found again has still running (its tasks' names), by its id. */
  readonly running = new Map<string, string[]>();

  openGroup(group: GroupRef, listener: GroupListener, id?: string): GroupHandle {
    const handle = new FakeGroup(id ?? `job-${this.next++}`, group, listener);
    for (const task of (id && this.running.get(id)) || []) handle.stillThere.add(task);
    this.groups.set(group.name, handle);
    return handle;
  }
  async close(): Promise<void> {}
  group(name: string): FakeGroup {
    const found = this.groups.get(name);
    if (!found) throw new Error(`the cluster was not asked for group ${name}`);
    return found;
  }
}

const PAIR = `
  workflow:
    name: pair
    timeout:
      queue_timeout: 60s
    groups:
      - name: g
        barrier: true
        tasks:
          - name: server
            lead: true
            image: alpine
            command: ["serve"]
            args: ["--peer", "{{host:client}}"]
          - name: client
            image: alpine
            command: ["connect", "{{host:server}}:8000"]
      - name: after
        tasks:
          - name: last
            image: alpine
            command: ["true"]
            inputs:
              - task: server
`;

async function start(yaml: string, options: Partial<RunOptions> = {}, setup: (cluster: FakeCluster) => void = () => {}) {
  const plan = await compileYaml(yaml);
  const clock = new FakeClock();
  const recorder = new MemoryRecorder();
  // Logs are copied from the cluster's streams into files (localLogs false): here, not under /logs.
  const logDir = mkdtempSync(join(tmpdir(), "troupe-cluster-logs-"));
  logDirs.push(logDir);
  recorder.logPath = (_run, group, task, retryId) => join(logDir, group, task, `${retryId}.log`);
  const cluster = new FakeCluster();
  setup(cluster);
  const run = new WorkflowRun({
    runId: "wf-c",
    plan,
    session: cluster,
    capabilities: { placement: "cluster", localLogs: false },
    recorder,
    dataDir: "/data/wf-c",
    capacity: { cpu: 1e6, gpu: 0, memoryBytes: 1e15 },
    maxParallel: 1000,
    maxRetries: 0,
    stopGraceMs: 500,
    leadHeadStartMs: 0,
    clock,
    ...options,
  });
  let result: RunResult | undefined;
  void run.start().then((r) => (result = r));
  await flush();
  const attempts = (task: string) => recorder.attempts.get(key(task)) ?? [];
  const key = (task: string) => {
    const { g, t } = locateTask(plan, task);
    return `${g}/${t}`;
  };
  return {
    plan,
    clock,
    recorder,
    cluster,
    run,
    result: () => result,
    groupStatus: (g: number) => recorder.groups.get(g)?.status,
    task: (name: string) => attempts(name)[attempts(name).length - 1]!,
    attempts,
    reasons: (name: string) => {
      const { g, t } = locateTask(plan, name);
      return recorder.transitions
        .filter((x) => x.subject.kind === "task" && x.subject.group === g && x.subject.task === t)
        .map((x) => `${x.to}: ${x.reason}`);
    },
  };
}

/** The file's contents once they are `expected`, or what they are after 5 s. */
async function copied(path: string, expected: string): Promise<string> {
  const read = () => (existsSync(path) ? readFileSync(path, "utf8") : "");
  for (let waited = 0; waited < 5_000 && read() !== expected; waited += 10) await new Promise((r) => setTimeout(r, 10));
  return read();
}

const logDirs: string[] = [];
afterAll(() => {
  for (const dir of logDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("a pool whose cluster places the groups", () => {
  it("a group is SCHEDULING until every member is placed, in any order; {{host:X}} is the placement's name; the handle's id is recorded", async () => {
    const h = await start(PAIR);
    const g = h.cluster.group("g");
    expect(g.placeAsked.map((m) => m.taskName)).toEqual(["server", "client"]);
    // What each member asks for goes with it: a cluster allocates it when it places the group.
    const demand = h.plan.groups[0]!.tasks[0]!.resources;
    expect(g.placeAsked[0]!.resources).toEqual({
      cpu: demand.cpu,
      gpu: demand.gpu,
      memoryBytes: demand.memoryBytes,
      storageBytes: demand.storageBytes,
    });
    expect(h.recorder.groups.get(0)?.handle).toBe(g.id);
    expect(h.groupStatus(0)).toBe("SCHEDULING");
    g.placeMember("client");
    await flush();
    // One member placed is not the group placed: nothing prepared, tokens not resolvable yet.
    expect(h.groupStatus(0)).toBe("SCHEDULING");
    expect(g.launches.size).toBe(0);
    g.placeMember("server");
    await flush();
    expect(h.groupStatus(0)).toBe("INITIALIZING");
    expect(h.task("server").ip).toBe("10.9.0.1");
    const server = g.launches.get(g.key("server"))!;
    const client = g.launches.get(g.key("client"))!;
    expect(server.argv.join(" ")).toContain("--peer client.cluster.example");
    expect(client.argv.join(" ")).toContain("server.cluster.example:8000");
    expect(client.hosts).toEqual({ server: "10.9.0.1", client: "10.9.0.2" });
    // The barrier: nothing released until both are ready.
    g.ready("server");
    await flush();
    expect(g.released).toEqual([]);
    g.output.set(g.key("server"), ["listening", "served 1"]);
    g.output.set(g.key("client"), ["connected"]);
    g.ready("client");
    await flush();
    expect(g.released.sort()).toEqual([g.key("client"), g.key("server")]);
    expect(h.groupStatus(0)).toBe("RUNNING");
    // The pool writes no local logs: the engine copied each stream into the attempt's log file.
    // (The copy is file I/O: waited for, not assumed done after a few turns of the event loop.)
    expect(await copied(h.recorder.logPath("wf-c", "g", "server", 0), "listening\nserved 1\n")).toBe("listening\nserved 1\n");
    expect(await copied(h.recorder.logPath("wf-c", "g", "client", 0), "connected\n")).toBe("connected\n");
    g.end("client", { kind: "exited", code: 0 });
    g.end("server", { kind: "exited", code: 0 });
    await flush();
    expect(h.groupStatus(0)).toBe("COMPLETED");
    expect(g.closed).toBe(1);
  });

  it("the record's start times are the cluster's own, where it says when each command started on its node", async () => {
    const h = await start(PAIR);
    const g = h.cluster.group("g");
    const now = h.clock.now();
    g.startTimes = new Map([
      [g.key("server"), now + 1_234],
      [g.key("client"), now + 1_271],
    ]);
    g.placeMember("server");
    g.placeMember("client");
    await flush();
    g.ready("server");
    g.ready("client");
    await flush();
    expect(g.released).toHaveLength(2);
    // Start skew, as the record keeps it: 37 ms between the two nodes.
    expect(h.task("server").startTime).toBe(now + 1_234);
    expect(h.task("client").startTime).toBe(now + 1_271);
  });

  it("the queue timeout runs while the cluster has not placed the group, its reason the cluster's: FAILED_QUEUE_TIMEOUT, its unplaced members stopped at once, its placed ones once up", async () => {
    const h = await start(PAIR);
    const g = h.cluster.group("g");
    g.placeMember("server");
    // Why the cluster waits is the task's SCHEDULING reason, recorded once per change.
    for (const why of ["0/3 nodes are available: 3 Insufficient cpu", "0/3 nodes are available: 3 Insufficient cpu", "2 Insufficient gpu"])
      g.listener.unplaced?.(g.key("client"), why);
    await flush();
    expect(h.reasons("client").filter((r) => r.includes("not placed"))).toEqual([
      "SCHEDULING: the cluster has not placed it: 0/3 nodes are available: 3 Insufficient cpu",
      "SCHEDULING: the cluster has not placed it: 2 Insufficient gpu",
    ]);
    h.clock.advance(60_000);
    await flush();
    expect(h.groupStatus(0)).toBe("FAILED_QUEUE_TIMEOUT");
    expect(h.task("client").reason).toMatch(/queue timeout \(60s\) for resources; the cluster's last word: 2 Insufficient gpu$/);
    expect(h.groupStatus(1)).toBe("FAILED_UPSTREAM");
    // The member the cluster has not placed is stopped now (a pending job is cancelled); the placed one is not up yet.
    expect(g.stopped.map((s) => s.key)).toEqual([g.key("client")]);
    // The cluster places it after all: every member is stopped as soon as it is up, never released.
    g.placeMember("client");
    await flush();
    g.ready("server");
    g.ready("client");
    await flush();
    expect(g.released).toEqual([]);
    expect(new Set(g.stopped.map((s) => s.key))).toEqual(new Set([g.key("client"), g.key("server")]));
    g.end("server", { kind: "exited", code: 143 });
    g.end("client", { kind: "exited", code: 143 });
    await flush();
    expect(h.result()).toEqual({ status: "FAILED_QUEUE_TIMEOUT" });
  });

  it("an evicted lead: FAILED_EVICTED with 3004, the group and its downstream fail; a log the pool cannot stream is said", async () => {
    const warnings: string[] = [];
    const h = await running({ onWarning: (message) => warnings.push(message) });
    expect(warnings).toContain("the log of server (attempt 0) is incomplete: no output for g/server/0 in the fake cluster");
    h.g.end("server", { kind: "evicted", message: "node memory pressure" });
    await flush();
    expect(h.task("server")).toMatchObject({ status: "FAILED_EVICTED", exitCode: 3004 });
    expect(h.reasons("server").at(-1)).toBe("FAILED_EVICTED: evicted: node memory pressure");
    expect(h.groupStatus(0)).toBe("FAILED_EVICTED");
    expect(h.task("client").status).toBe("FAILED");
    expect(h.g.stopped.map((s) => s.key)).toContain(h.g.key("client"));
  });

  it("a preempted member is rescheduled: a new attempt placed again by the cluster, its siblings restarted with it", async () => {
    const h = await running({ maxRetries: 1 });
    h.g.end("server", { kind: "preempted", message: "a higher-priority job" });
    await flush();
    expect(h.attempts("server")[0]).toMatchObject({ status: "RESCHEDULED", exitCode: 3006 });
    expect(h.reasons("server")).toContain("RESCHEDULED: preempted: a higher-priority job: RESCHEDULE (retry 1 of 1)");
    // The lead's reschedule restarts its sibling: it cannot restart in place here, so a fresh attempt too.
    h.g.end("client", { kind: "exited", code: 143 });
    await flush();
    expect(h.g.placeAsked.map((m) => `${m.taskName}/${m.retryId}`)).toEqual(["server/0", "client/0", "server/1", "client/1"]);
    h.g.placeMember("server", 1, "10.9.0.7");
    h.g.placeMember("client", 1);
    await flush();
    expect(h.g.launches.get(h.g.key("client", 1))!.argv.join(" ")).toContain("server.cluster.example");
    expect(h.task("server").ip).toBe("10.9.0.7");
    h.g.ready("server", 1);
    h.g.ready("client", 1);
    await flush();
    h.g.end("client", { kind: "exited", code: 0 }, 1);
    h.g.end("server", { kind: "exited", code: 0 }, 1);
    await flush();
    expect(h.groupStatus(0)).toBe("COMPLETED");
  });

  it("preempted with no retries left: FAILED_PREEMPTED, 3006", async () => {
    const h = await running();
    h.g.end("server", { kind: "preempted", message: "again" });
    await flush();
    expect(h.task("server")).toMatchObject({ status: "FAILED_PREEMPTED", exitCode: 3006 });
    expect(h.groupStatus(0)).toBe("FAILED_PREEMPTED");
  });

  it("a member that never becomes ready: FAILED_START_TIMEOUT, 3005, nothing released", async () => {
    const h = await start(PAIR);
    const g = h.cluster.group("g");
    g.placeMember("server");
    g.placeMember("client");
    await flush();
    g.ready("client");
    g.end("server", { kind: "start-timeout", message: "not ready after 600s" });
    await flush();
    expect(h.task("server")).toMatchObject({ status: "FAILED_START_TIMEOUT", exitCode: 3005 });
    expect(h.reasons("server").at(-1)).toContain("not ready after 600s");
    expect(g.released).toEqual([]);
    expect(g.stopped.map((s) => s.key)).toEqual([g.key("client")]);
  });

  it("a release that fails: the members fail with OSMO's barrier code 2024 and the reason, and are stopped", async () => {
    const h = await start(PAIR);
    const g = h.cluster.group("g");
    g.failRelease = "step launch refused by slurmd";
    g.placeMember("server");
    g.placeMember("client");
    await flush();
    g.ready("server");
    g.ready("client");
    await flush();
    expect(h.task("server")).toMatchObject({ status: "FAILED", exitCode: 2024 });
    expect(h.reasons("server").at(-1)).toBe("FAILED: the barrier could not be released: step launch refused by slurmd");
    expect(h.task("client")).toMatchObject({ status: "FAILED", exitCode: 2024 });
    expect(h.groupStatus(0)).toBe("FAILED");
    expect(g.stopped.map((s) => s.key).sort()).toEqual([g.key("client"), g.key("server")]);
  });

  it("a member lost by the pool is FAILED_SERVER_ERROR; a node failure is FAILED_BACKEND_ERROR with 3001", async () => {
    const h = await running();
    h.g.end("client", { kind: "backend-error", message: "node n2 is DOWN" });
    await flush();
    expect(h.task("client")).toMatchObject({ status: "FAILED_BACKEND_ERROR", exitCode: 3001 });
    // ignoreNonleadStatus (default true): the group goes on with its lead.
    expect(h.groupStatus(0)).toBe("RUNNING");
    h.g.end("server", { kind: "lost", message: "the job vanished from squeue" });
    await flush();
    expect(h.task("server")).toMatchObject({ status: "FAILED_SERVER_ERROR", exitCode: 3002 });
  });

  it("a restarted troupe finds a running group again by the handle id it recorded: attempts re-attached, one the cluster lost FAILED_SERVER_ERROR", async () => {
    const resume: ResumedRun = {
      reason: "the server restarted: run resumed",
      groups: [
        {
          status: "RUNNING",
          startTime: 5_000,
          handle: "job-77",
          tasks: [
            { status: "RUNNING", retryId: 0, exitCode: null, ip: "10.9.0.1" },
            { status: "RUNNING", retryId: 0, exitCode: null, ip: "10.9.0.2" },
          ],
        },
        { status: "WAITING", startTime: null, tasks: [{ status: "WAITING", retryId: 0, exitCode: null, ip: null }] },
      ],
    };
    const h = await start(PAIR, { resume }, (cluster) => cluster.running.set("job-77", ["server"]));
    const g = h.cluster.group("g");
    // The same handle (its recorded id), nothing placed or prepared again; each running attempt re-attached.
    expect(g.id).toBe("job-77");
    expect(g.placeAsked).toEqual([]);
    expect(g.reattached.map((l) => `${l.key} ${l.address}`).sort()).toEqual(["g/client/0 10.9.0.2", "g/server/0 10.9.0.1"]);
    expect(h.task("client")).toMatchObject({ status: "FAILED_SERVER_ERROR", exitCode: 3002 });
    expect(h.reasons("client").at(-1)).toContain("troupe restarted and the attempt could not be found");
    // The one found goes on through the same events as any attempt.
    g.end("server", { kind: "exited", code: 0 });
    await flush();
    expect(h.groupStatus(0)).toBe("COMPLETED");
    expect(g.closed).toBe(1);
    expect(h.cluster.group("after").placeAsked.map((m) => m.taskName)).toEqual(["last"]);
  });

  async function running(options: Partial<RunOptions> = {}) {
    const h = await start(PAIR, options);
    const g = h.cluster.group("g");
    g.placeMember("server");
    g.placeMember("client");
    await flush();
    g.ready("server");
    g.ready("client");
    await flush();
    expect(h.groupStatus(0)).toBe("RUNNING");
    return { ...h, g };
  }
});
