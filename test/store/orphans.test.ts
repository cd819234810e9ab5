import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RunStore } from "../../src/store/index.js";
import { isProcessTokenAlive, processToken } from "../../src/util/process-identity.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

function store(): RunStore {
  const home = mkdtempSync(join(tmpdir(), "troupe-orphans-"));
  homes.push(home);
  return RunStore.open(home);
}

const run = (owner: string) => ({
  name: "wf",
  specText: "",
  runtime: "test",
  submitTime: 1_000,
  owner,
  groups: [
    {
      name: "g",
      tasks: [
        { name: "a", lead: true },
        { name: "b", lead: false },
      ],
    },
  ],
});

describe("runs whose troupe process died", () => {
  it("are settled as FAILED_SERVER_ERROR with their unfinished groups and tasks; finished parts keep their status", () => {
    const s = store();
    const dead = s.createRun(run("dead-owner"));
    const alive = s.createRun(run("live-owner"));
    for (const id of [dead, alive]) {
      s.updateRun(id, { status: "RUNNING", startTime: 1_100 });
      s.updateGroup(id, 0, { status: "RUNNING" });
      s.updateTask(id, 0, 0, { status: "COMPLETED", exitCode: 0, endTime: 1_200 });
      s.updateTask(id, 0, 1, { status: "RUNNING" });
    }
    const settled = s.settleOrphanedRuns((owner) => owner === "live-owner", 2_000);
    expect(settled).toEqual([dead]);
    const record = s.getRun(dead)!;
    expect(record.status).toBe("FAILED_SERVER_ERROR");
    expect(record.end_time).toBe(new Date(2_000).toISOString());
    expect(record.groups[0]!.status).toBe("FAILED_SERVER_ERROR");
    expect(record.groups[0]!.tasks.map((t) => t.status)).toEqual(["COMPLETED", "FAILED_SERVER_ERROR"]);
    expect(
      s
        .transitions(dead)
        .filter((t) => t.to === "FAILED_SERVER_ERROR")
        .map((t) => t.reason)[0],
    ).toMatch(/ended before the run did/);
    expect(s.getRun(alive)!.status).toBe("RUNNING");
    // Settled once: a second pass finds nothing more to do.
    expect(s.settleOrphanedRuns(() => false, 3_000)).toEqual([alive]);
    expect(s.settleOrphanedRuns(() => false, 4_000)).toEqual([]);
    s.close();
  });
});

describe("process tokens", () => {
  it("name this process as alive, and a made-up or reused pid as not", () => {
    const token = processToken();
    expect(isProcessTokenAlive(token)).toBe(true);
    const [pid, start, boot] = token.split(":");
    expect(isProcessTokenAlive(`${pid}:${Number(start) + 1}:${boot}`)).toBe(false);
    expect(isProcessTokenAlive(`${pid}:${start}:another-boot`)).toBe(false);
    expect(isProcessTokenAlive(`999999999:${start}:${boot}`)).toBe(false);
  });
});
