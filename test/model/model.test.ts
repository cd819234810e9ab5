/**
 * The model is the vocabulary every layer and the web UI import: it must stay
 * light (no Node, no packages), and the statuses' meanings live only there.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import {
  attemptKeptDir,
  attemptLogPath,
  attemptOutputDir,
  attemptSandboxDir,
  isPathSegment,
  relativeRunDir,
  runLogDir,
  runSandboxesDir,
  FAILED_STATUSES,
  FINAL_STATUSES,
  hasErrorLogs,
  isFailure,
  isFinal,
  RUN_STATUSES,
  TaskStatus,
  WorkflowStatus,
  type AttemptRecord,
  type GroupRecord,
  type RunRecord,
  type RunSummary,
  type TaskRecord,
  type TransitionRecord,
} from "../../src/model/index.js";

const srcDir = new URL("../../src/", import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

describe("the model", () => {
  it("imports nothing but its own files (no Node, no packages): a browser can load it", () => {
    const outside = sourceFiles(join(srcDir, "model")).flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(/(?:import|export)[^'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)/g)]
        .map((m) => (m[1] ?? m[2]) as string)
        .filter((spec) => !/^\.\/[\w-]+\.js$/.test(spec))
        .map((spec) => `${relative(srcDir, file)} imports ${spec}`),
    );
    expect(outside).toEqual([]);
  });

  it("has the run records the store gives out and the API returns", () => {
    const task: TaskRecord = {
      name: "t",
      lead: true,
      status: "COMPLETED",
      exit_code: 0,
      retry_id: 0,
      ip: null,
      start_time: null,
      end_time: null,
      reason: null,
      reused_from: "w-1",
    };
    const group: GroupRecord = { name: "g", status: "COMPLETED", start_time: null, end_time: null, reused_from: "w-1", tasks: [task] };
    const run: RunRecord = {
      id: "w-2",
      name: "w",
      status: "COMPLETED",
      submit_time: "",
      start_time: null,
      end_time: null,
      groups: [group],
    };
    const attempt: AttemptRecord = { ...task, group: "g", task: "t", log_path: "runs/w-1/logs/t.0.log" };
    const transition: TransitionRecord = { group: "g", task: null, retry_id: null, from: "WAITING", to: "COMPLETED", reason: "", time: "" };
    const summary: RunSummary = { ...run, task_count: 1 };
    expect([run, attempt, transition, summary].every((r) => typeof r === "object")).toBe(true);
  });

  it("says which statuses are final and which are failures, in lists that agree with the predicates", () => {
    const every = [...new Set<string>([...Object.values(TaskStatus), ...Object.values(WorkflowStatus)])];
    expect(every.filter(isFinal).sort()).toEqual([...FINAL_STATUSES].sort());
    expect(every.filter(isFailure).sort()).toEqual([...FAILED_STATUSES].sort());
    expect(RUN_STATUSES.filter(isFailure)).toContain("FAILED_SUBMISSION");
    expect(["RUNNING", "WAITING", "SCHEDULING", "PENDING"].some(isFinal)).toBe(false);
  });

  it("gives error logs to attempts that failed by their own doing or were rescheduled (OSMO's has_error_logs)", () => {
    expect(["FAILED", "RESCHEDULED", "FAILED_PREEMPTED"].map(hasErrorLogs)).toEqual([true, true, true]);
    expect(
      ["COMPLETED", "RUNNING", "FAILED_UPSTREAM", "FAILED_CANCELED", "FAILED_IMAGE_PULL", "FAILED_EXEC_TIMEOUT"].some(hasErrorLogs),
    ).toBe(false);
  });
});

describe("one vocabulary", () => {
  // The engine (being converted to the port) and the runtimes, which name the one status they report, are not scanned.
  const scanned = sourceFiles(srcDir).filter((file) => !/\/src\/(model|engine|runtime|port)\//.test(file));
  const copies: Array<[string, RegExp]> = [
    ["a prefix test for failures", /startsWith\(\s*["']FAILED|\/\^FAILED/],
    ["a SQL pattern for statuses", /LIKE\s+'FAILED|'COMPLETED'\s*,\s*'RESCHEDULED'/],
    ["a hand-made list of failure statuses", /["']FAILED_[A-Z_]+["']\s*,\s*\n?\s*["']FAILED_[A-Z_]+["']/],
    ["a hand-made list of priorities", /["']HIGH["']\s*,\s*["']NORMAL["']/],
  ];

  it("has no copies of the statuses' or priorities' meanings outside src/model", () => {
    const found = scanned.flatMap((file) => {
      const text = readFileSync(file, "utf8");
      return copies.filter(([, pattern]) => pattern.test(text)).map(([what]) => `${relative(srcDir, file)}: ${what}`);
    });
    expect(found).toEqual([]);
  });
});

describe("the run-directory layout", () => {
  it("puts a run's logs, outputs, sandboxes and kept tasks' state under its directory, joined with /", () => {
    const runDir = `/home/u/.troupe/${relativeRunDir("wf-3")}`;
    expect(runDir).toBe("/home/u/.troupe/runs/wf-3");
    expect(runLogDir(runDir)).toBe("/home/u/.troupe/runs/wf-3/logs");
    expect(attemptLogPath(runDir, "train", 2)).toBe("/home/u/.troupe/runs/wf-3/logs/train.2.log");
    expect(attemptOutputDir(runDir, "train", 2)).toBe("/home/u/.troupe/runs/wf-3/outputs/train/2");
    expect(runSandboxesDir(runDir)).toBe("/home/u/.troupe/runs/wf-3/sandboxes");
    expect(attemptSandboxDir(runDir, "train", 2)).toBe("/home/u/.troupe/runs/wf-3/sandboxes/train.2");
    expect(attemptKeptDir(runDir, "train", 2)).toBe("/home/u/.troupe/runs/wf-3/kept/train.2");
    expect(attemptLogPath(relativeRunDir("wf-3"), "t", 0)).toBe("runs/wf-3/logs/t.0.log");
  });

  it("takes only names that stay one path segment", () => {
    expect(["wf-1", "train.0", "a b"].every(isPathSegment)).toBe(true);
    expect(["", "a/b", "..", "a\\b", "x\0"].some(isPathSegment)).toBe(false);
  });
});
