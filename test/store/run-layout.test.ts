/**
 * The store places runs as the model's layout says (model/run-layout.ts):
 * its log paths, those the attempt triggers record in SQL (migrations.ts)
 * included, and the directories it makes.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { attemptLogPath, relativeRunDir, runLogDir } from "../../src/model/index.js";
import { RunStore } from "../../src/store/index.js";

const homes: string[] = [];
afterEach(() => homes.splice(0).forEach((h) => rmSync(h, { recursive: true, force: true })));

it("gives every attempt the log path of the model's layout, and makes the run's log directory there", () => {
  const home = mkdtempSync(join(tmpdir(), "troupe-layout-"));
  homes.push(home);
  const store = RunStore.open(home);
  try {
    const id = store.createRun({
      name: "wf",
      specText: "",
      runtime: "test",
      submitTime: 0,
      groups: [{ name: "g", tasks: [{ name: "train", lead: true }] }],
    });
    store.updateTask(id, 0, 0, { retryId: 1, status: "RUNNING" });
    const runDir = join(home, relativeRunDir(id));
    expect(store.runDir(id)).toBe(runDir);
    expect(store.runLogDir(id)).toBe(runLogDir(runDir));
    expect(existsSync(runLogDir(runDir))).toBe(true);
    expect(store.logPath(id, "g", "train", 1)).toBe(attemptLogPath(runDir, "train", 1));
    expect(store.attempts(id).map((a) => a.log_path)).toEqual([attemptLogPath(runDir, "train", 0), attemptLogPath(runDir, "train", 1)]);
    expect(() => store.logPath(id, "g", "../x", 0)).toThrow(/cannot be used in a file path/);
  } finally {
    store.close();
  }
});
