/**
 * Checkpoints' deciding parts (engine/checkpoints.ts): where each checkpoint
 * directory is on this machine for each kind of pool, and the upload loop's
 * timing and failures, on the engine's fake clock and a data plane that
 * records what it is asked (the real uploads, against a real S3 server:
 * test/s3/checkpoint-run.test.ts).
 */
import { describe, expect, it } from "vitest";
import { checkpointPlaces, CheckpointUploads, type CheckpointPlace } from "../../src/engine/checkpoints.js";
import type { DataPlane, TaskLaunch, TransferReport, UrlTransfer } from "../../src/port/index.js";
import { FakeClock, flush } from "./fakes.js";
import { compileYaml } from "./plan-helpers.js";

const launch = (mounts = false): TaskLaunch => ({
  key: "trainer-group/trainer/2",
  taskName: "trainer",
  groupName: "trainer-group",
  retryId: 2,
  image: "alpine",
  argv: ["true"],
  env: {},
  files: [],
  outputDir: "/home/t/runs/r1/outputs/trainer/2",
  inputDirs: [],
  address: "10.0.0.2",
  hosts: {},
  logPath: "/home/t/runs/r1/logs/trainer.2.log",
  ...(mounts ? { mounts: [] } : {}),
});

async function trainer() {
  const plan = await compileYaml(`
    workflow:
      name: w
      tasks:
      - name: trainer
        image: alpine
        command: ["true"]
        checkpoint:
        - {path: /workspace/ckpt, url: "s3://b/{{workflow_id}}/a", frequency: 30s}
        - {path: "{{output}}/ckpt/", url: s3://b/b, frequency: 1m, regex: '.*\\.pt$'}
        - {path: /osmo/data/output/deep, url: s3://b/c, frequency: 5s}
  `);
  return plan.groups[0]!.tasks[0]!;
}

describe("where a checkpoint directory is", () => {
  it("in a container (OSMO's paths, mounts): its own directory mounted at a path outside the output, the output's part inside it", async () => {
    const sight = { runId: "r1", dataDir: "/home/t/runs/r1", taskView: { mounts: true, dataPaths: "osmo" as const } };
    const places = checkpointPlaces(sight, await trainer(), launch());
    expect(places.map((p) => [p.path, p.transfer.dir, p.mount?.target])).toEqual([
      ["/workspace/ckpt", "/home/t/runs/r1/checkpoints/trainer/2/0", "/workspace/ckpt"],
      ["/osmo/data/output/ckpt", "/home/t/runs/r1/outputs/trainer/2/ckpt", undefined],
      ["/osmo/data/output/deep", "/home/t/runs/r1/outputs/trainer/2/deep", undefined],
    ]);
    expect(places.map((p) => [p.transfer.url, p.transfer.regex, p.frequencyMs])).toEqual([
      ["s3://b/r1/a", undefined, 30_000],
      ["s3://b/b", ".*\\.pt$", 60_000],
      ["s3://b/c", undefined, 5_000],
    ]);
    expect(places[0]!.mount).toEqual({
      source: "/home/t/runs/r1/checkpoints/trainer/2/0",
      target: "/workspace/ckpt",
      readOnly: false,
      made: true,
    });
  });

  it("in the host's sandbox (its own paths, mounts): /osmo/data/output is no output there, so it is mounted like any other path", async () => {
    const sight = { runId: "r1", dataDir: "/home/t/runs/r1", taskView: { mounts: true, dataPaths: "host" as const } };
    const places = checkpointPlaces(sight, await trainer(), launch());
    expect(places.map((p) => [p.path, p.transfer.dir, p.mount?.target])).toEqual([
      ["/workspace/ckpt", "/home/t/runs/r1/checkpoints/trainer/2/0", "/workspace/ckpt"],
      ["/home/t/runs/r1/outputs/trainer/2/ckpt", "/home/t/runs/r1/outputs/trainer/2/ckpt", undefined],
      ["/osmo/data/output/deep", "/home/t/runs/r1/checkpoints/trainer/2/2", "/osmo/data/output/deep"],
    ]);
  });

  it("for plain processes (no mounts): the host's path itself", async () => {
    const sight = { runId: "r1", dataDir: "/home/t/runs/r1", taskView: { mounts: false, dataPaths: "host" as const } };
    const places = checkpointPlaces(sight, await trainer(), launch());
    expect(places.map((p) => [p.transfer.dir, p.mount])).toEqual([
      ["/workspace/ckpt", undefined],
      ["/home/t/runs/r1/outputs/trainer/2/ckpt", undefined],
      ["/osmo/data/output/deep", undefined],
    ]);
  });
});

/** A data plane that records its uploads and fails those it is told to. */
class RecordingPlane implements DataPlane {
  readonly uploads: Array<{ at: number; url: string }> = [];
  failing = false;
  constructor(private readonly clock: FakeClock) {}
  check(): Promise<void> {
    return Promise.resolve();
  }
  download(): Promise<TransferReport> {
    return Promise.resolve({ files: 0, bytes: 0, ms: 0 });
  }
  upload(transfers: readonly UrlTransfer[]): Promise<TransferReport> {
    this.uploads.push({ at: this.clock.now(), url: transfers[0]!.url });
    return this.failing ? Promise.reject(new Error("store unreachable")) : Promise.resolve({ files: 1, bytes: 10, ms: 5 });
  }
}

const place = (url: string, frequencyMs: number): CheckpointPlace => ({
  path: "/ckpt",
  transfer: { url, regex: undefined, dir: "/d" },
  frequencyMs,
  mount: undefined,
});

describe("the checkpoint uploads of an attempt", () => {
  const setUp = () => {
    const clock = new FakeClock();
    const data = new RecordingPlane(clock);
    const notes: string[] = [];
    const controller = new AbortController();
    const uploads = new CheckpointUploads(
      { clock, data, note: (m) => notes.push(m) },
      [place("s3://b/fast", 1_000), place("s3://b/slow", 5_000)],
      controller.signal,
    );
    return { clock, data, notes, controller, uploads, start: clock.now() };
  };

  it("uploads each checkpoint every period from the end of the last, and once more at the end", async () => {
    const { clock, data, notes, uploads, start } = setUp();
    uploads.start();
    for (let i = 0; i < 5; i++) {
      clock.advance(1_000);
      await flush();
    }
    // (Two due at one time go in either order.)
    expect(data.uploads.map((u) => [u.at - start, u.url]).sort()).toEqual([
      [1_000, "s3://b/fast"],
      [2_000, "s3://b/fast"],
      [3_000, "s3://b/fast"],
      [4_000, "s3://b/fast"],
      [5_000, "s3://b/fast"],
      [5_000, "s3://b/slow"],
    ]);
    expect(notes[0]).toBe("checkpoint uploaded: 1 file (10B) of /ckpt to s3://b/fast in 0.01 s");
    expect(await uploads.finish(true)).toBeUndefined();
    expect(data.uploads.slice(6).map((u) => u.url)).toEqual(["s3://b/fast", "s3://b/slow"]);
    expect(notes.slice(-2)).toEqual([
      "last checkpoint uploaded: 1 file (10B) of /ckpt to s3://b/fast in 0.01 s",
      "last checkpoint uploaded: 1 file (10B) of /ckpt to s3://b/slow in 0.01 s",
    ]);
    // Nothing after the end.
    clock.advance(60_000);
    await flush();
    expect(data.uploads).toHaveLength(8);
  });

  it("a periodic upload that fails is said and tried again at the next period; the last one's failure is finish's answer", async () => {
    const { clock, data, notes, uploads } = setUp();
    data.failing = true;
    uploads.start();
    clock.advance(1_000);
    await flush();
    expect(notes).toEqual(["checkpoint to s3://b/fast failed (tried again in 1 s): store unreachable"]);
    clock.advance(1_000);
    await flush();
    expect(data.uploads).toHaveLength(2);
    expect((await uploads.finish(true))?.message).toBe("store unreachable");
  });

  it("no last upload for an attempt that was stopped, or whose command did not exit", async () => {
    const stopped = setUp();
    stopped.uploads.start();
    stopped.controller.abort();
    expect(await stopped.uploads.finish(true)).toBeUndefined();
    expect(stopped.data.uploads).toEqual([]);

    const lost = setUp();
    lost.uploads.start();
    expect(await lost.uploads.finish(false)).toBeUndefined();
    expect(lost.data.uploads).toEqual([]);
    expect(lost.clock.timers.size).toBe(0);
  });
});
