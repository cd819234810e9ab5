// util/worker-pool.ts: jobs bounded from their own start, a slow job costs
// only its own worker, and one key's jobs hold at most their share.
import { describe, expect, it } from "vitest";
import { WorkerPool } from "../../src/util/worker-pool.js";

const file = new URL("./sleep-worker.mjs", import.meta.url);

describe("WorkerPool", () => {
  it("times a job from when its worker starts it, not from when it was queued", async () => {
    const pool = new WorkerPool<{ ms: number }, number>({ file, size: 1 });
    const slow = pool.run({ ms: 5_000 }, { timeoutMs: 1_000 });
    // Queued behind the slow job for its 1 s (past its own deadline, were it counted from there), then given its
    // own second for a tenth of it.
    const quick = pool.run({ ms: 100 }, { timeoutMs: 1_000 });
    expect(await slow).toEqual({ kind: "timeout" });
    expect(await quick).toEqual({ kind: "done", result: 100 });
  });

  it("one key's jobs hold at most `perKey` workers: another key's job starts at once", async () => {
    // The jobs say when they started and ended (their worker's clock): the order is the point, not how long it took.
    const pool = new WorkerPool<{ ms: number; times: true }, { started: number; ended: number }>({ file, size: 2, perKey: 1 });
    const bob = [pool.run({ ms: 600, times: true }, { key: "bob" }), pool.run({ ms: 600, times: true }, { key: "bob" })];
    const carol = await pool.run({ ms: 10, times: true }, { key: "carol" });
    const [first, second] = await Promise.all(bob);
    if (carol.kind !== "done" || first?.kind !== "done" || second?.kind !== "done") throw new Error(JSON.stringify({ carol, bob }));
    // Carol's job took the second worker while Bob's first ran, ahead of Bob's second, which waited for his first.
    expect(carol.result.started).toBeLessThan(first.result.ended);
    expect(second.result.started).toBeGreaterThanOrEqual(first.result.ended);
    expect(second.result.started).toBeGreaterThanOrEqual(carol.result.started);
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
