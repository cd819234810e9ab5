// util/worker-pool.ts: jobs bounded from their own start, a slow job costs
// only its own worker, and one key's jobs hold at most their share.
import { describe, expect, it } from "vitest";
import { WorkerPool } from "../../src/util/worker-pool.js";

const file = new URL("./sleep-worker.mjs", import.meta.url);

describe("WorkerPool", () => {
  it("times a job from when its worker starts it, not from when it was queued", async () => {
    const pool = new WorkerPool<{ ms: number }, number>({ file, size: 1 });
    const slow = pool.run({ ms: 5_000 }, { timeoutMs: 300 });
    // Queued behind the slow job for 300 ms, then given its own 300 ms.
    const quick = pool.run({ ms: 100 }, { timeoutMs: 300 });
    expect(await slow).toEqual({ kind: "timeout" });
    expect(await quick).toEqual({ kind: "done", result: 100 });
  });

  it("one key's jobs hold at most `perKey` workers: another key's job starts at once", async () => {
    const pool = new WorkerPool<{ ms: number }, number>({ file, size: 2, perKey: 1 });
    const started = Date.now();
    const bob = [pool.run({ ms: 600 }, { key: "bob" }), pool.run({ ms: 600 }, { key: "bob" })];
    const carol = await pool.run({ ms: 10 }, { key: "carol" });
    expect(carol).toEqual({ kind: "done", result: 10 });
    expect(Date.now() - started).toBeLessThan(500);
    expect(await Promise.all(bob)).toEqual([
      { kind: "done", result: 600 },
      { kind: "done", result: 600 },
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_150); // bob's two ran one after the other
  });

  it("a job its worker answers with an error fails alone: the worker goes on with the next", async () => {
    const pool = new WorkerPool<{ ms: number; fail?: string }, number>({ file, size: 1 });
    const failed = pool.run({ ms: 10, fail: "no good" });
    const next = pool.run({ ms: 10 });
    const outcome = await failed;
    expect(outcome).toMatchObject({ kind: "failed" });
    expect(outcome.kind === "failed" && outcome.error.message).toBe("no good");
    expect(await next).toEqual({ kind: "done", result: 10 });
    expect(pool.size).toBe(1);
  });
});
