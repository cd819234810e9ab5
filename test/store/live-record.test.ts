/**
 * The in-memory record of a run being written (store/live-record.ts) must be
 * what the database says: the same record, the same JSON text, after any
 * sequence of updates (new attempts, cleared fields, statuses of runs, groups
 * and tasks), whether or not the writes were flushed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RunStore, type StatusUpdate } from "../../src/store/index.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

function openStore(): RunStore {
  const home = mkdtempSync(join(tmpdir(), "troupe-live-"));
  homes.push(home);
  return RunStore.open(home);
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
  it.each([
    [1, [3, 1, 4]],
    [2, [3, 1, 4]],
    [3, [3, 1, 4]],
    [4, [2, 5]],
    [5, Array.from({ length: 300 }, () => 1)],
    [6, Array.from({ length: 300 }, (_, i) => 1 + (i % 3))],
  ])("equals the database's record after random updates (seed %i)", (seed, shape) => {
    const next = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const maybe = <T>(value: () => T): T | undefined => (next() < 0.5 ? value() : undefined);
    const store = openStore();
    const id = store.createRun({
      name: "live",
      specText: "",
      runtime: "test",
      submitTime: 1_000,
      user: "ann",
      pool: "default",
      priority: "HIGH",
      labels: { team: "robots" },
      groups: shape.map((n, g) => ({ name: `g${g}`, tasks: Array.from({ length: n }, (_, t) => ({ name: `t${g}-${t}`, lead: t === 0 })) })),
    });
    store.keepLive(id);
    const retries = shape.map((n) => Array.from({ length: n }, () => 0));
    const steps = shape.length > 10 ? 3000 : 400;
    for (let step = 0; step < steps; step++) {
      const update = (): StatusUpdate => ({
        status: maybe(() => pick(STATUSES)),
        startTime: maybe(() => (next() < 0.2 ? null : 1_000_000 + Math.floor(next() * 1e9))),
        endTime: maybe(() => (next() < 0.2 ? null : 1_000_000 + Math.floor(next() * 1e9))),
      });
      const kind = next();
      if (kind < 0.1) store.updateRun(id, update());
      else if (kind < 0.3) store.updateGroup(id, Math.floor(next() * shape.length), update());
      else {
        const g = Math.floor(next() * shape.length);
        const t = Math.floor(next() * shape[g]!);
        const newAttempt = next() < 0.15;
        if (newAttempt) retries[g]![t]! += 1;
        store.updateTask(id, g, t, {
          ...update(),
          exitCode: maybe(() => (next() < 0.3 ? null : Math.floor(next() * 256))),
          ip: maybe(() => (next() < 0.3 ? null : `10.0.0.${Math.floor(next() * 250)}`)),
          retryId: newAttempt || next() < 0.3 ? retries[g]![t] : undefined,
        });
      }
      if (step % 37 === 0 || step === steps - 1) {
        const flushes = store.stats.flushes;
        const live = store.runJson(id)!;
        expect(store.stats.flushes).toBe(flushes); // from memory: no flush, no read
        const fromDatabase = store.getRun(id)!; // flushes, then reads the rows
        expect(JSON.parse(live.json)).toEqual(fromDatabase);
        expect(live.json).toBe(JSON.stringify(fromDatabase));
        expect(live.status).toBe(fromDatabase.status);
      }
    }
    store.forget(id);
    expect(store.runJson(id)!.json).toBe(JSON.stringify(store.getRun(id)));
    store.close();
  });
});
