/** The run store against a real SQLite file in a temporary TROUPE_HOME. */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { TroupeError } from "../../src/errors/index.js";
import { migrate, MIGRATIONS, type Migration } from "../../src/store/migrations.js";
import { RunStore, type NewRun, type RunRecord } from "../../src/store/index.js";

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const iso = (ms: number) => new Date(ms).toISOString();

const homes: string[] = [];
const stores: RunStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), "troupe-store-"));
  homes.push(home);
  return home;
}

function openStore(home: string, options = {}): RunStore {
  const store = RunStore.open(home, options);
  stores.push(store);
  return store;
}

function newRun(name = "wf", submitTime = T0): NewRun {
  return {
    name,
    specText: "workflow:\n  name: wf\n",
    runtime: "host/none",
    submitTime,
    groups: [
      {
        name: "servers",
        tasks: [
          { name: "server", lead: false },
          { name: "client", lead: true },
        ],
      },
      { name: "report", tasks: [{ name: "report", lead: true }] },
    ],
  };
}

function bigRun(groups: number, tasksPerGroup: number): NewRun {
  return {
    ...newRun("big"),
    groups: Array.from({ length: groups }, (_, g) => ({
      name: `g${g}`,
      tasks: Array.from({ length: tasksPerGroup }, (_, t) => ({ name: `g${g}-t${t}`, lead: t === 0 })),
    })),
  };
}

describe("RunStore", () => {
  it("creates a run and reads it back in exactly the RunRecord shape", () => {
    const store = openStore(tempHome());
    const id = store.createRun(newRun());
    const task = (name: string, lead: boolean) => ({
      name,
      lead,
      status: "SUBMITTING",
      exit_code: null,
      retry_id: 0,
      ip: null,
      start_time: null,
      end_time: null,
      reason: null,
    });
    const expected: RunRecord = {
      id: "wf-1",
      name: "wf",
      status: "PENDING",
      submit_time: "2026-01-02T03:04:05.678Z",
      start_time: null,
      end_time: null,
      groups: [
        { name: "servers", status: "SUBMITTING", start_time: null, end_time: null, tasks: [task("server", false), task("client", true)] },
        { name: "report", status: "SUBMITTING", start_time: null, end_time: null, tasks: [task("report", true)] },
      ],
    };
    const record = store.getRun(id);
    expect(id).toBe("wf-1");
    expect(record).toStrictEqual(expected);
    // Key order is what `--output json` prints.
    expect(JSON.stringify(record)).toBe(JSON.stringify(expected));
    expect(statSync(join(store.runDir(id), "logs")).isDirectory()).toBe(true);

    store.updateRun(id, { status: "RUNNING", startTime: T0 + 1 });
    store.updateGroup(id, 0, { status: "RUNNING", startTime: T0 + 2 });
    store.updateTask(id, 0, 1, { status: "RUNNING", startTime: T0 + 3, ip: "10.1.0.3" });
    store.updateTask(id, 0, 1, { status: "COMPLETED", endTime: T0 + 4, exitCode: 0 });
    const after = store.getRun(id)!;
    expect(after.status).toBe("RUNNING");
    expect(after.start_time).toBe(iso(T0 + 1));
    expect(after.groups[0]).toMatchObject({ status: "RUNNING", start_time: iso(T0 + 2), end_time: null });
    expect(after.groups[0]!.tasks[1]).toStrictEqual({
      name: "client",
      lead: true,
      status: "COMPLETED",
      exit_code: 0,
      retry_id: 0,
      ip: "10.1.0.3",
      start_time: iso(T0 + 3),
      end_time: iso(T0 + 4),
      reason: null,
    });
    expect(store.getRun("nope-1")).toBeUndefined();
  });

  it("numbers runs per name and lists them newest first", () => {
    const store = openStore(tempHome());
    expect(store.createRun(newRun("wf", T0))).toBe("wf-1");
    expect(store.createRun(newRun("wf", T0 + 10))).toBe("wf-2");
    expect(store.createRun(newRun("other", T0 + 20))).toBe("other-1");
    expect(store.createRun(newRun("wf", T0 + 30))).toBe("wf-3");
    store.updateRun("wf-2", { status: "COMPLETED" });

    expect(store.listRuns().map((r) => r.id)).toEqual(["wf-3", "other-1", "wf-2", "wf-1"]);
    expect(store.listRuns({ limit: 2 }).map((r) => r.id)).toEqual(["wf-3", "other-1"]);
    expect(store.listRuns({ name: "wf" }).map((r) => r.id)).toEqual(["wf-3", "wf-2", "wf-1"]);
    expect(store.listRuns({ status: "COMPLETED" })).toStrictEqual([
      {
        id: "wf-2",
        name: "wf",
        status: "COMPLETED",
        submit_time: iso(T0 + 10),
        start_time: null,
        end_time: null,
        task_count: 3,
      },
    ]);
  });

  it("resolves run ids by exact id or unique prefix", () => {
    const store = openStore(tempHome());
    for (let i = 0; i < 10; i++) store.createRun(newRun("wf"));
    store.createRun(newRun("other"));
    expect(store.resolveRunId("wf-1")).toBe("wf-1"); // exact, though wf-10 also starts with it
    expect(store.resolveRunId("wf-10")).toBe("wf-10");
    expect(store.resolveRunId("oth")).toBe("other-1");
    expect(store.resolveRunId("wf")).toBeUndefined(); // ambiguous
    expect(store.resolveRunId("zzz")).toBeUndefined();
    expect(store.resolveRunId("")).toBeUndefined();
  });

  it("keeps updates in memory until a flush, and getRun flushes", () => {
    const home = tempHome();
    const store = openStore(home);
    const reader = openStore(home);
    const id = store.createRun(newRun());
    expect(reader.getRun(id)?.status).toBe("PENDING"); // the run itself is written at once

    store.updateRun(id, { status: "RUNNING" });
    store.recordTransition(id, { subject: { kind: "run" }, from: "PENDING", to: "RUNNING", reason: "started", time: T0 });
    expect(reader.getRun(id)?.status).toBe("PENDING");
    expect(reader.transitions(id)).toEqual([]);
    store.flush();
    expect(reader.getRun(id)?.status).toBe("RUNNING");
    expect(reader.transitions(id)).toHaveLength(1);

    store.updateRun(id, { status: "COMPLETED" });
    expect(reader.getRun(id)?.status).toBe("RUNNING");
    expect(store.getRun(id)?.status).toBe("COMPLETED");
    expect(reader.getRun(id)?.status).toBe("COMPLETED");
  });

  it("flushes on its own after the interval and when the queue is full", async () => {
    const home = tempHome();
    const store = openStore(home);
    const reader = openStore(home);
    const id = store.createRun(newRun());
    store.updateRun(id, { status: "RUNNING" });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(reader.getRun(id)?.status).toBe("RUNNING");
    expect(store.stats.flushes).toBe(1);

    for (let i = 0; i < 1000; i++) {
      store.recordTransition(id, { subject: { kind: "group", group: 1 }, from: "A", to: "B", reason: `${i}`, time: T0 + i });
    }
    expect(store.stats.flushes).toBe(2); // the 1000th operation filled the queue
    expect(reader.transitions(id)).toHaveLength(1000);
  });

  it("keeps the queue and tries again when a timed flush fails", async () => {
    const home = tempHome();
    const errors: unknown[] = [];
    const store = openStore(home, { busyTimeoutMs: 10, onError: (e: unknown) => errors.push(e) });
    const id = store.createRun(newRun());
    const locker = new Database(join(home, "troupe.db"));
    try {
      locker.exec("BEGIN IMMEDIATE"); // another process holds the write lock
      store.updateRun(id, { status: "RUNNING" });
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(errors.length).toBeGreaterThan(0);
      expect(errors[0]).toMatchObject({ code: "SQLITE_BUSY" });
      locker.exec("ROLLBACK");
    } finally {
      locker.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(store.stats.flushes).toBe(1);
    expect(openStore(home).getRun(id)?.status).toBe("RUNNING");
  });

  it("writes 100,000 updates of a 10,000-task run quickly, in few transactions", () => {
    /** Ten updates a task (three transitions, seven changes) for `groups` groups of 100 tasks; how long they took. */
    const write = (store: RunStore, groups: number) => {
      const id = store.createRun(bigRun(groups, 100));
      const started = performance.now();
      let calls = 0;
      for (let g = 0; g < groups; g++) {
        for (let t = 0; t < 100; t++) {
          const task = { kind: "task", group: g, task: t, retryId: 0 } as const;
          const time = T0 + g * 100 + t;
          const steps = [
            ["SUBMITTING", "SCHEDULING"],
            ["SCHEDULING", "RUNNING"],
            ["RUNNING", "COMPLETED"],
          ] as const;
          for (const [from, to] of steps) {
            store.recordTransition(id, { subject: task, from, to, reason: "test", time });
            store.updateTask(id, g, t, { status: to });
            calls += 2;
          }
          store.updateTask(id, g, t, { startTime: time, ip: `10.0.${g}.${t}` });
          store.updateTask(id, g, t, { endTime: time + 1 });
          store.updateTask(id, g, t, { exitCode: 0 });
          store.updateGroup(id, g, { status: t === 99 ? "COMPLETED" : "RUNNING" });
          calls += 4;
        }
      }
      store.flush();
      return { id, calls, ms: performance.now() - started };
    };
    // The baseline, a tenth of the updates in another home, measured first: ten times the updates take about ten
    // times as long, however busy the machine (a cost per update growing with the run: far more). A transaction
    // per update is what the count of flushes below catches.
    const small = write(openStore(tempHome()), 10);
    const home = tempHome();
    const store = openStore(home);
    const { id, calls, ms } = write(store, 100);
    expect(calls).toBe(100_000);
    expect(store.stats.calls).toBe(100_000);
    expect(ms, `${ms.toFixed(0)} ms against ${small.ms.toFixed(0)} ms for a tenth`).toBeLessThan(30 * Math.max(small.ms, 50));
    // 30,000 transitions plus the updates merged per row: about 40 transactions, not 100,000.
    expect(store.stats.flushes).toBeLessThan(100);

    const reader = openStore(home);
    const run = reader.getRun(id)!;
    const tasks = run.groups.flatMap((g) => g.tasks);
    expect(tasks).toHaveLength(10_000);
    expect(tasks.every((t) => t.status === "COMPLETED" && t.exit_code === 0 && t.end_time !== null)).toBe(true);
    expect(run.groups.every((g) => g.status === "COMPLETED")).toBe(true);
    expect(run.groups[3]!.tasks[7]).toMatchObject({ ip: "10.0.3.7", start_time: iso(T0 + 307), end_time: iso(T0 + 308) });
    expect(reader.transitions(id)).toHaveLength(30_000);
  });

  it("records every attempt of a rescheduled task and every transition in time order", () => {
    const store = openStore(tempHome());
    const id = store.createRun(newRun());
    const client = { kind: "task", group: 0, task: 1 } as const;
    store.updateTask(id, 0, 1, { status: "RUNNING", startTime: T0, ip: "10.1.0.2" });
    store.updateTask(id, 0, 1, { status: "RESCHEDULED", endTime: T0 + 10, exitCode: 1, reason: "exit 1" });
    // No flush between attempts: the queue must not merge retry 1 into retry 0.
    store.updateTask(id, 0, 1, { retryId: 1, status: "SCHEDULING" });
    store.updateTask(id, 0, 1, { status: "RUNNING", startTime: T0 + 20, ip: "10.1.0.5" });
    store.updateTask(id, 0, 1, { status: "COMPLETED", endTime: T0 + 30, exitCode: 0, reason: "exit 0" });
    store.recordTransition(id, { subject: { ...client, retryId: 1 }, from: "RUNNING", to: "COMPLETED", reason: "exit 0", time: T0 + 30 });
    store.recordTransition(id, { subject: { ...client, retryId: 0 }, from: "RUNNING", to: "RESCHEDULED", reason: "exit 1", time: T0 + 10 });
    store.recordTransition(id, {
      subject: { kind: "group", group: 1 },
      from: "SUBMITTING",
      to: "WAITING",
      reason: "upstream",
      time: T0 + 5,
    });
    store.recordTransition(id, { subject: { kind: "run" }, from: null, to: "PENDING", reason: "submitted", time: T0 });

    expect(store.getRun(id)!.groups[0]!.tasks[1]).toStrictEqual({
      name: "client",
      lead: true,
      status: "COMPLETED",
      exit_code: 0,
      retry_id: 1,
      ip: "10.1.0.5",
      start_time: iso(T0 + 20),
      end_time: iso(T0 + 30),
      reason: "exit 0",
    });
    const attempts = store.attempts(id).filter((a) => a.task === "client");
    expect(attempts).toStrictEqual([
      {
        group: "servers",
        task: "client",
        retry_id: 0,
        status: "RESCHEDULED",
        exit_code: 1,
        ip: "10.1.0.2",
        start_time: iso(T0),
        end_time: iso(T0 + 10),
        reason: "exit 1",
        log_path: store.logPath(id, "servers", "client", 0),
      },
      {
        group: "servers",
        task: "client",
        retry_id: 1,
        status: "COMPLETED",
        exit_code: 0,
        ip: "10.1.0.5",
        start_time: iso(T0 + 20),
        end_time: iso(T0 + 30),
        reason: "exit 0",
        log_path: store.logPath(id, "servers", "client", 1),
      },
    ]);
    expect(store.attempts(id)).toHaveLength(4); // one attempt each for server and report

    expect(store.transitions(id)).toStrictEqual([
      { group: null, task: null, retry_id: null, from: null, to: "PENDING", reason: "submitted", time: iso(T0) },
      { group: "report", task: null, retry_id: null, from: "SUBMITTING", to: "WAITING", reason: "upstream", time: iso(T0 + 5) },
      { group: "servers", task: "client", retry_id: 0, from: "RUNNING", to: "RESCHEDULED", reason: "exit 1", time: iso(T0 + 10) },
      { group: "servers", task: "client", retry_id: 1, from: "RUNNING", to: "COMPLETED", reason: "exit 0", time: iso(T0 + 30) },
    ]);
  });

  it("keeps everything across close and reopen, including writes still queued at close", () => {
    const home = tempHome();
    const store = RunStore.open(home);
    const id = store.createRun(newRun());
    store.updateRun(id, { status: "RUNNING", startTime: T0 + 1 });
    store.recordTransition(id, { subject: { kind: "run" }, from: "PENDING", to: "RUNNING", reason: "started", time: T0 + 1 });
    store.flush();
    store.updateRun(id, { status: "COMPLETED", endTime: T0 + 2 });
    store.updateTask(id, 1, 0, { retryId: 1, status: "RUNNING" });
    store.close();
    store.close(); // idempotent
    expect(() => store.getRun(id)).toThrow(/closed/);

    const reopened = openStore(home);
    const run = reopened.getRun(id)!;
    expect(run).toMatchObject({ status: "COMPLETED", start_time: iso(T0 + 1), end_time: iso(T0 + 2) });
    expect(run.groups[1]!.tasks[0]).toMatchObject({ status: "RUNNING", retry_id: 1 });
    expect(reopened.transitions(id)).toHaveLength(1);
    expect(reopened.createRun(newRun())).toBe("wf-2");
  });

  it("uses WAL, so a second store reads what the first has flushed", () => {
    const home = tempHome();
    const writer = openStore(home);
    const reader = openStore(home);
    const id = writer.createRun(newRun());
    writer.updateTask(id, 0, 0, { status: "RUNNING" });
    writer.flush();
    expect(reader.getRun(id)?.groups[0]?.tasks[0]?.status).toBe("RUNNING");
    expect(reader.listRuns().map((r) => r.id)).toEqual([id]);
    const raw = new Database(join(home, "troupe.db"), { readonly: true });
    try {
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
    } finally {
      raw.close();
    }
  });

  it("keeps which GPUs a group's members have, apart from the record (a resumed server reads them back)", () => {
    const home = tempHome();
    const store = openStore(home);
    const id = store.createRun(newRun());
    store.updateGroup(id, 0, { status: "INITIALIZING", gpus: [[2], [0, 3]] });
    store.updateTask(id, 0, 0, { status: "INITIALIZING", gpus: [[9]] }); // a task row has no GPUs column: ignored
    expect(store.groupHoldings(id).map((h) => h.gpus)).toEqual([[[2], [0, 3]], null]);
    expect(JSON.stringify(store.getRun(id))).not.toContain("gpus");
    // Another connection (the next server) reads the same.
    const next = openStore(home);
    expect(next.groupHoldings(id).map((h) => h.gpus)).toEqual([[[2], [0, 3]], null]);
    store.updateGroup(id, 0, { gpus: null });
    expect(store.groupHoldings(id).map((h) => h.gpus)).toEqual([null, null]);
  });

  it("applies migrations once and refuses a database from the future", () => {
    const home = tempHome();
    openStore(home).close();
    openStore(home); // a second open finds the schema in place
    const db = new Database(join(home, "troupe.db"));
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
      expect(migrate(db)).toBe(0);

      let ran = 0;
      const extra: Migration[] = [
        ...MIGRATIONS,
        { version: MIGRATIONS.length + 1, description: "test", up: (d) => (ran++, d.exec("CREATE TABLE extra (x)")) },
      ];
      expect(migrate(db, extra)).toBe(1);
      expect(migrate(db, extra)).toBe(0);
      expect(ran).toBe(1);

      db.pragma("user_version = 99");
    } finally {
      db.close();
    }
    let error: unknown;
    try {
      RunStore.open(home);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TroupeError);
    expect(error).toMatchObject({ code: "E_STORE_TOO_NEW", kind: "system" });
    expect((error as Error).message).toContain(`version 99, newer than this troupe knows (${MIGRATIONS.length})`);

    const garbage = tempHome();
    writeFileSync(join(garbage, "troupe.db"), "this is not a database, but it is long enough to have a header ".repeat(4));
    expect(() => RunStore.open(garbage)).toThrow(expect.objectContaining({ code: "E_STORE_OPEN" }));
  });

  it("gives log paths under the run's directory and refuses names that leave it", () => {
    const home = tempHome();
    const store = openStore(home);
    const id = store.createRun(newRun());
    expect(store.runDir(id)).toBe(join(home, "runs", "wf-1"));
    expect(store.logPath(id, "servers", "client", 2)).toBe(join(home, "runs", "wf-1", "logs", "client.2.log"));
    expect(() => store.logPath(id, "servers", "../client", 0)).toThrow(TroupeError);
    expect(() => store.logPath(id, "servers", "a/b", 0)).toThrow(/cannot be used in a file path/);
    expect(() => store.logPath(id, "..", "client", 0)).toThrow(TroupeError);
    expect(() => store.logPath(id, "servers", "client", -1)).toThrow(TroupeError);
    expect(() => store.runDir("../x")).toThrow(TroupeError);
    expect(() => store.createRun({ ...newRun(), groups: [{ name: "g", tasks: [{ name: "x/..", lead: true }] }] })).toThrow(TroupeError);
    expect(store.listRuns()).toHaveLength(1); // the refused run left nothing behind
  });

  it("refuses writes about runs, groups or tasks that do not exist, at the call", () => {
    const store = openStore(tempHome());
    const id = store.createRun(newRun());
    expect(() => store.updateRun("wf-9", { status: "RUNNING" })).toThrow(expect.objectContaining({ code: "E_RUN_NOT_FOUND" }));
    expect(() => store.updateGroup(id, 2, { status: "RUNNING" })).toThrow(/no group 2/);
    expect(() => store.updateTask(id, 1, 1, { status: "RUNNING" })).toThrow(/no task 1.1/);
    expect(() =>
      store.recordTransition(id, { subject: { kind: "task", group: 0, task: 5, retryId: 0 }, from: null, to: "X", reason: "", time: T0 }),
    ).toThrow(TroupeError);
    // A run created by another store is found in the database.
    const other = openStore(store.home);
    other.updateRun(id, { status: "RUNNING" });
    expect(other.getRun(id)?.status).toBe("RUNNING");
  });
});
