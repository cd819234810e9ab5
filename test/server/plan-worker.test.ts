/**
 * server/plan-worker.ts: an internal error while planning one submission
 * fails that submission (an error answer, util/worker-pool.ts's protocol),
 * not the worker. Before, the rejection went unhandled and killed the worker.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PlanReply, PlanRequest } from "../../src/server/plan-submission.js";
import { WorkerPool } from "../../src/util/worker-pool.js";

let dir: string;
let file: URL;

beforeAll(async () => {
  // The worker from its source, bundled (a worker thread cannot load TypeScript).
  dir = mkdtempSync(join(tmpdir(), "troupe-plan-worker-"));
  const outfile = join(dir, "plan-worker.mjs");
  await build({
    entryPoints: [new URL("../../src/server/plan-worker.ts", import.meta.url).pathname],
    bundle: true,
    platform: "node",
    format: "esm",
    // What the bundled CommonJS dependencies require.
    banner: { js: "import { createRequire as troupeRequire } from 'node:module'; const require = troupeRequire(import.meta.url);" },
    outfile,
    logLevel: "silent",
  });
  file = pathToFileURL(outfile);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("plan-worker", () => {
  it("an internal error fails its job only; the same worker plans the next", async () => {
    const pool = new WorkerPool<PlanRequest, PlanReply>({ file, size: 1 });
    // No pool: planSubmission throws (a TypeError), as an internal error would.
    const broken = { user: "alice", spec: "workflow: {}", set: {}, setString: {}, maxTasks: 10, wantPlan: false } as unknown as PlanRequest;
    const good: PlanRequest = {
      user: "alice",
      spec: "not: a workflow\n",
      set: {},
      setString: {},
      pool: {
        name: "default",
        capacity: { cpu: 4, gpu: 0 } as PlanRequest["pool"]["capacity"],
        maxRetries: 0,
        privilegedAllowed: false,
        allowedMounts: [],
      },
      maxTasks: 10,
      wantPlan: false,
    };
    const failed = pool.run(broken);
    const next = pool.run(good);
    const outcome = await failed;
    // Before: { kind: "crashed", error: the worker exited }.
    expect(outcome.kind, JSON.stringify(outcome, ["kind", "error", "message"]) + ((outcome as { error?: Error }).error?.stack ?? "")).toBe(
      "failed",
    );
    expect(outcome.kind === "failed" && outcome.error.message).toMatch(/undefined/);
    expect(await next).toMatchObject({ kind: "done", result: { kind: "invalid" } });
    expect(pool.size).toBe(1);
  }, 30_000);
});
