/** How many tasks a run starts at once when it does not say: the run's own, else its runtime's, else the engine's. */
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_PARALLEL, maxParallelFor } from "../../src/engine/index.js";
import type { PoolCapabilities } from "../../src/port/index.js";

const machine: PoolCapabilities = {
  placement: "engine",
  sharedFileSystem: true,
  tasksOutliveTroupe: false,
  localLogs: true,
  mounts: true,
  dataPaths: "host",
};

describe("maxParallelFor", () => {
  it("takes the run's or pool's own limit over any default", () => {
    expect(maxParallelFor({ ...machine, defaultMaxParallel: 1000 }, 3)).toBe(3);
  });

  it("takes the runtime's default where it has one, else the engine's 64", () => {
    expect(maxParallelFor({ ...machine, defaultMaxParallel: 500 })).toBe(500);
    expect(maxParallelFor(machine)).toBe(DEFAULT_MAX_PARALLEL);
    expect(DEFAULT_MAX_PARALLEL).toBe(64);
  });
});
