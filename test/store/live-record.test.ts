/**
 * The in-memory record of a run being written (store/live-record.ts) must be
 * what the database says: the same record, the same JSON text, after any
 * sequence of updates (new attempts, cleared fields, statuses of runs, groups
 * and tasks, where a restart took them over from), whether or not the writes were flushed; both where the store
 * that writes keeps it, and where another connection (the server's HTTP
 * thread) keeps it from the updates passed on after each commit, in batches,
 * some passed on before its first read and some twice.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createdRunRecord, RunStore, type NewRun, type StatusUpdate, type StoreUpdate } from "../../src/store/index.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

/**
 * The store that writes, and the one that keeps the live record: the same
 * one, or another connection to the same file fed with the writer's commits
 * (`deliver` passes on those not passed on yet, in order, like http-thread.ts).
 */
function openStores(arrangement: "same store" | "another connection"): {
  writer: RunStore;
  reader: RunStore;
  deliver: (repeatLast?: number) => void;
  close: () => void;
} {
  const home = mkdtempSync(join(tmpdir(), "troupe-live-"));
  homes.push(home);
  if (arrangement === "same store") {
    const store = RunStore.open(home);
    return { writer: store, reader: store, deliver: () => undefined, close: () => store.close() };
  }
  const committed: StoreUpdate[] = [];
  let delivered = 0;
  const writer = RunStore.open(home, { onCommit: (updates) => committed.push(...updates) });
  const reader = RunStore.open(home);
  return {
    writer,
    reader,
    deliver: (repeatLast = 0) => {
      // Updates passed on twice are applied again, in order, to the same result.
      reader.applyUpdates(committed.slice(Math.max(0, delivered - repeatLast)));
      delivered = committed.length;
    },
    close: () => {
      writer.close();
      reader.close();
    },
  };
}

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STATUSES = ["WAITING", "SCHEDULING", "INITIALIZING", "RUNNING", "COMPLETED", "FAILED", "RESCHEDULED"];

describe("the live record of a run being written", () => {
  // A few groups of several tasks; and 300 single-task groups, whose JSON is kept in blocks of 128.
  const shapes: Array<[number, number[]]> = [
    [1, [3, 1, 4]],
    [2, [3, 1, 4]],
    [3, [3, 1, 4]],
    [4, [2, 5]],
    [5, Array.from({ length: 300 }, () => 1)],
    [6, Array.from({ length: 300 }, (_, i) => 1 + (i % 3))],
  ];
  it.each(
    (["same store", "another connection"] as const).flatMap((arrangement) =>
      shapes.map(([seed, shape]) => [arrangement, seed, shape] as const),
    ),
  )("equals the database's record after random updates (%s, seed %i)", (arrangement, seed, shape) => {
    const next = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const maybe = <T>(value: () => T): T | undefined => (next() < 0.5 ? value() : undefined);
    const { writer: store, reader, deliver, close } = openStores(arrangement);
    const newRun: NewRun = {
      name: "live",
      specText: "",
      runtime: "test",
      submitTime: 1_000,
      user: "ann",
      pool: "default",
      priority: "HIGH",
      labels: { team: "robots" },
      groups: shape.map((n, g) => ({ name: `g${g}`, tasks: Array.from({ length: n }, (_, t) => ({ name: `t${g}-${t}`, lead: t === 0 })) })),
    };
    const id = store.createRun(newRun);
    // Even seeds: kept from the record as created; odd ones: read from the database when first asked for.
    reader.keepLive(id, seed % 2 === 0 ? createdRunRecord(id, newRun) : undefined);
    const retries = shape.map((n) => Array.from({ length: n }, () => 0));
    const steps = shape.length > 10 ? 3000 : 400;
    const firstRead = Math.floor((next() * steps) / 37) * 37;
    for (let step = 0; step < steps; step++) {
      const update = (): StatusUpdate => ({
        status: maybe(() => pick(STATUSES)),
        startTime: maybe(() => (next() < 0.2 ? null : 1_000_000 + Math.floor(next() * 1e9))),
        endTime: maybe(() => (next() < 0.2 ? null : 1_000_000 + Math.floor(next() * 1e9))),
      });
      const kind = next();
      if (kind < 0.1) store.updateRun(id, update());
      else if (kind < 0.3)
        store.updateGroup(id, Math.floor(next() * shape.length), {
          ...update(),
          reusedFrom: next() < 0.1 ? pick([null, "earlier-1"]) : undefined,
        });
      else {
        const g = Math.floor(next() * shape.length);
        const t = Math.floor(next() * shape[g]!);
        const newAttempt = next() < 0.15;
        if (newAttempt) retries[g]![t]! += 1;
        store.updateTask(id, g, t, {
          ...update(),
          exitCode: maybe(() => (next() < 0.3 ? null : Math.floor(next() * 256))),
          ip: maybe(() => (next() < 0.3 ? null : `10.0.0.${Math.floor(next() * 250)}`)),
          reason: maybe(() => (next() < 0.2 ? null : `exited with ${Math.floor(next() * 256)}`)),
          reusedFrom: next() < 0.05 ? pick([null, "earlier-1", "earlier-2"]) : undefined,
          retryId: newAttempt || next() < 0.3 ? retries[g]![t] : undefined,
        });
      }
      // The other connection is passed the commits in batches, now and then some of them again.
      if (arrangement === "another connection" && next() < 0.1) {
        store.flush();
        deliver(next() < 0.3 ? Math.floor(next() * 20) : 0);
      }
      // The first read comes after some updates (read from the database, then kept in memory).
      if (step >= firstRead && (step % 37 === 0 || step === steps - 1)) {
        store.flush();
        deliver();
        const reads = reader.stats.flushes;
        const live = reader.runJson(id)!;
        expect(reader.stats.flushes).toBe(reads); // the first read, from the database, needed no flush either
        const fromDatabase = store.getRun(id)!;
        expect(JSON.parse(live.json)).toEqual(fromDatabase);
        expect(live.json).toBe(JSON.stringify(fromDatabase));
        expect(live.status).toBe(fromDatabase.status);
      }
    }
    reader.forget(id);
    store.flush();
    expect(reader.runJson(id)!.json).toBe(JSON.stringify(store.getRun(id)));
    close();
  });

  it("applies a new attempt passed on again after its first read to the same row (another connection)", () => {
    const { writer, reader, deliver, close } = openStores("another connection");
    const id = writer.createRun({
      name: "again",
      specText: "",
      runtime: "test",
      submitTime: 1_000,
      groups: [{ name: "g", tasks: [{ name: "t", lead: true }] }],
    });
    reader.keepLive(id);
    writer.updateTask(id, 0, 0, { retryId: 1, status: "RUNNING", startTime: 2_000 });
    writer.flush();
    deliver();
    writer.updateTask(id, 0, 0, { status: "FAILED", exitCode: 1, endTime: 3_000 });
    writer.flush();
    // A retry that names no status: the row starts over, as SUBMITTING with nothing else set.
    writer.updateTask(id, 0, 0, { retryId: 2 });
    writer.flush();
    // Read first (from the database: the second attempt), then passed the last two commits.
    expect(JSON.parse(reader.runJson(id)!.json).groups[0].tasks[0]).toMatchObject({ retry_id: 2, status: "SUBMITTING" });
    deliver();
    const task = JSON.parse(reader.runJson(id)!.json).groups[0].tasks[0];
    expect(task).toMatchObject({ retry_id: 2, status: "SUBMITTING", exit_code: null, end_time: null, start_time: null });
    expect(reader.runJson(id)!.json).toBe(JSON.stringify(writer.getRun(id)));
    close();
  });

  it("is, as created, what the database has right after createRun (with and without a server's fields)", () => {
    const { writer, close } = openStores("same store");
    const runs: NewRun[] = [
      { name: "plain", specText: "", runtime: "host", submitTime: 1_234, groups: [{ name: "g", tasks: [{ name: "a", lead: true }] }] },
      {
        name: "served",
        specText: "x",
        runtime: "container",
        submitTime: 5_678,
        user: "ann",
        pool: "gpu",
        priority: "LOW",
        labels: { team: "robots", stage: "eval" },
        groups: [
          {
            name: "g0",
            tasks: [
              { name: "a", lead: false },
              { name: "b", lead: true },
            ],
          },
          { name: "g1", tasks: [{ name: "c", lead: false }] },
        ],
      },
    ];
    for (const run of runs) {
      const id = writer.createRun(run);
      expect(JSON.stringify(createdRunRecord(id, run))).toBe(JSON.stringify(writer.getRun(id)));
    }
    close();
  });
});
