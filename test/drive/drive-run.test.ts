/**
 * driveRun, as both `troupe run` and the server use it: a run recorded on a
 * pool backend chosen through the registry (the host runtime, real
 * processes), driven to its end in a real store; a cancel that comes before
 * the engine's run exists still cancels it; a session that cannot open
 * leaves a FAILED_BACKEND_ERROR run with the reason; what runs of dead
 * owners left is swept and said; a clean-up that fails is said, not hidden.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FLAG_NAMING } from "../../src/cli/choose-runtime.js";
import { driveRun, recordRun, requestRuntime, type DriveOptions } from "../../src/drive/index.js";
import { LocalPool } from "../../src/runtime/index.js";
import type { PoolBackend } from "../../src/port/index.js";
import type { Runtime } from "../../src/runtime/index.js";
import { RunStore } from "../../src/store/index.js";
import { compileYaml } from "../engine/plan-helpers.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((home) => rmSync(home, { recursive: true, force: true })));

const SPEC = `
  workflow:
    name: wf
    tasks:
    - name: a
      image: alpine:3.18
      command: ["sh", "-c", "echo hello from a"]
`;

async function setUp(spec = SPEC) {
  const home = mkdtempSync(join(tmpdir(), "troupe-drive-"));
  homes.push(home);
  const store = RunStore.open(home);
  const plan = await compileYaml(spec);
  const request = { kind: "host", options: { isolation: "none" }, naming: FLAG_NAMING };
  const { backend } = await requestRuntime(request, { home }).settle({ images: new Set(), longLived: false });
  return { home, store, plan, backend };
}

const ENGINE = { capacity: { cpu: 4, gpu: 0, memoryBytes: 1 << 30 }, maxParallel: 8, maxRetries: 0 };

function details() {
  return { specText: SPEC, variables: { set: {}, setString: {} } };
}

describe("driveRun", () => {
  it("records the run on its backend and drives it to the end; live output reaches the caller", async () => {
    const { store, plan, backend } = await setUp();
    const { id, created } = recordRun(store, plan, backend, details());
    expect(created.runtime).toBe(backend.describe());
    expect(store.getRun(id)!.status).toBe("PENDING");
    const output: string[] = [];
    const driven = driveRun({
      runId: id,
      plan,
      store,
      backend,
      driver: "test",
      engine: ENGINE,
      onOutput: (launch, chunk) => output.push(`${launch.taskName}: ${chunk.toString()}`),
    });
    expect(await driven.ended).toEqual({ kind: "ended", status: "COMPLETED" });
    expect(await driven.done).toEqual({ outcome: { kind: "ended", status: "COMPLETED" }, closeError: undefined });
    expect(output.join("")).toContain("a: hello from a");
    expect(store.getRun(id)!.status).toBe("COMPLETED");
    store.close();
  });

  it("a cancel that comes before the engine's run exists cancels it as it starts", async () => {
    const { store, plan, backend } = await setUp(SPEC.replace("echo hello from a", "sleep 30"));
    const { id } = recordRun(store, plan, backend, details());
    const driven = driveRun({ runId: id, plan, store, backend, driver: "test", engine: ENGINE });
    driven.cancel(false, "canceled: by the test");
    expect(await driven.ended).toEqual({ kind: "ended", status: "FAILED_CANCELED" });
    await driven.done;
    const record = store.getRun(id)!;
    expect(record.status).toBe("FAILED_CANCELED");
    expect(store.transitions(id).some((t) => t.reason?.includes("canceled: by the test"))).toBe(true);
    store.close();
  });

  it("a session that cannot open: nothing ran, the run is FAILED_BACKEND_ERROR with the reason", async () => {
    const { store, plan } = await setUp();
    const refusing = (): Runtime =>
      ({
        describe: () => "runtime: refusing",
        notices: () => [],
        open: () => Promise.reject(new Error("no free /24 left")),
        close: () => Promise.resolve(),
        sweep: () => Promise.resolve([]),
        keepsTasks: false,
      }) as unknown as Runtime;
    const backend = new LocalPool("refusing", refusing);
    const { id } = recordRun(store, plan, backend, details());
    const driven = driveRun({ runId: id, plan, store, backend, driver: "test", engine: ENGINE });
    const outcome = await driven.ended;
    expect(outcome.kind).toBe("not-started");
    await driven.done;
    expect(store.getRun(id)!.status).toBe("FAILED_BACKEND_ERROR");
    expect(store.transitions(id).at(-1)!.reason).toBe("the run could not start: no free /24 left");
    store.close();
  });

  it("sweeps alongside the run and says what went; a failed clean-up is handed back, not hidden", async () => {
    const { store, plan, backend } = await setUp();
    const sweeps: unknown[] = [];
    // The pool as given, but its sweep finds something and its session's close fails.
    const wrapped: PoolBackend = {
      kind: backend.kind,
      capabilities: backend.capabilities,
      describe: () => backend.describe(),
      notices: () => backend.notices(),
      sweep: () => Promise.resolve(["network troupe-dead (run gone)"]),
      openSession: async (run) => {
        const session = await backend.openSession(run);
        return Object.assign(Object.create(session) as typeof session, {
          close: () => session.close().then(() => Promise.reject(new Error("could not remove bridge"))),
        });
      },
    };
    const { id } = recordRun(store, plan, wrapped, details());
    const options: DriveOptions = {
      runId: id,
      plan,
      store,
      backend: wrapped,
      driver: "test",
      engine: ENGINE,
      onSweep: (r) => sweeps.push(r),
    };
    const { outcome, closeError } = await driveRun(options).done;
    expect(outcome).toEqual({ kind: "ended", status: "COMPLETED" });
    expect(sweeps).toEqual([{ swept: ["network troupe-dead (run gone)"] }]);
    expect(closeError?.message).toBe("could not remove bridge");
    store.close();
  });
});
