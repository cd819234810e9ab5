/**
 * Acceptance: what `troupe run` prints and how it exits, seen by a script
 * (no terminal): `--output json` prints only the run record on stdout, the
 * first line names the runtime and isolation, no escape codes without a TTY,
 * exit codes 0 / 1 / 2.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  EXAMPLES,
  ISOLATIONS,
  ISO_MS,
  TestHome,
  describeRun,
  ensureBuilt,
  killStartedRuns,
  random,
  troupe,
  type RunRecord,
} from "./helpers.js";

let home: TestHome;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterEach(() => killStartedRuns());

afterAll(() => home?.remove());

const ESC = /\u001b/;
const PARALLEL = path.join(EXAMPLES, "parallel_tasks.yaml");
const firstLine = (text: string) => text.split("\n")[0] ?? "";
const RUN_KEYS = ["end_time", "groups", "id", "name", "start_time", "status", "submit_time"];
const GROUP_KEYS = ["end_time", "name", "start_time", "status", "tasks"];
const TASK_KEYS = ["end_time", "exit_code", "ip", "lead", "name", "reason", "retry_id", "start_time", "status"];

describe.each(ISOLATIONS)("troupe run output, --isolation %s", (isolation) => {
  it("--output json prints only the final run record on stdout; progress and the runtime line go to stderr", async () => {
    const run = await troupe(["run", PARALLEL, "--isolation", isolation, "--output", "json"], { home: home.home });
    expect(run.code, describeRun(run)).toBe(0);
    // The whole of stdout is one JSON document.
    const record = JSON.parse(run.stdout) as RunRecord;
    expect(Object.keys(record).sort()).toEqual(RUN_KEYS);
    expect(record).toMatchObject({ name: "parallel-tasks", status: "COMPLETED" });
    expect(record.id).toMatch(/^parallel-tasks-\d+$/);
    for (const time of [record.submit_time, record.start_time, record.end_time]) expect(time).toMatch(ISO_MS);
    expect(record.groups).toHaveLength(3);
    for (const group of record.groups) {
      expect(Object.keys(group).sort()).toEqual(GROUP_KEYS);
      expect(group.start_time).toMatch(ISO_MS);
      expect(group.end_time).toMatch(ISO_MS);
      for (const task of group.tasks) {
        expect(Object.keys(task).sort()).toEqual(TASK_KEYS);
        expect(task).toMatchObject({ lead: true, status: "COMPLETED", exit_code: 0, retry_id: 0 });
        expect(task.ip).toMatch(isolation === "netns" ? /^10\.\d+\.\d+\.\d+$/ : /^127\.\d+\.\d+\.\d+$/);
        expect(task.start_time).toMatch(ISO_MS);
        expect(task.end_time).toMatch(ISO_MS);
      }
    }
    expect(run.stdout).not.toContain("Hello from");
    expect(firstLine(run.stderr)).toMatch(new RegExp(`^troupe: run ${record.id}: runtime: host, isolation: ${isolation}\\b`));
    expect(run.stderr).toMatch(/^task-a +\| Hello from task-a$/m);
    expect(run.stderr).not.toMatch(ESC);
  });

  it("without --output json, the first stdout line names runtime and isolation, and nothing has escape codes off a terminal", async () => {
    const run = await troupe(["run", PARALLEL, "--isolation", isolation], { home: home.home });
    expect(run.code, describeRun(run)).toBe(0);
    expect(firstLine(run.stdout)).toMatch(new RegExp(`^troupe: run parallel-tasks-\\d+: runtime: host, isolation: ${isolation}\\b`));
    for (const name of ["task-a", "task-b", "task-c"]) expect(run.stdout).toMatch(new RegExp(`^${name} +\\| Hello from ${name}$`, "m"));
    // The summary table.
    expect(run.stdout).toMatch(/^TASK +GROUP +STATUS +EXIT +RETRY +DURATION +IP +REASON$/m);
    expect(run.stdout).toMatch(/^task-a +task-a-group +COMPLETED +0 +0 /m);
    expect(run.stdout).not.toMatch(ESC);
    expect(run.stderr).not.toMatch(ESC);
    expect(run.stdout.startsWith("{")).toBe(false);
  });
});

describe("troupe run exit codes and defaults", () => {
  it("as root, the default isolation is netns, and the first line says so", async () => {
    const run = await troupe(["run", PARALLEL], { home: home.home });
    expect(run.code, describeRun(run)).toBe(0);
    expect(firstLine(run.stdout)).toMatch(/runtime: host, isolation: netns\b/);
  });

  it("exits 1 when the workflow fails, still printing the record", async () => {
    const file = home.spec(
      "fails",
      `workflow:
  name: fails-${random()}
  tasks:
  - name: bad
    image: alpine:3.18
    command: ["sh", "-c", "exit 4"]
`,
    );
    const run = await troupe(["run", file, "--isolation", "none", "--output", "json"], { home: home.home });
    expect(run.code, describeRun(run)).toBe(1);
    const record = JSON.parse(run.stdout) as RunRecord;
    expect(record.status).toBe("FAILED");
    expect(record.groups[0]?.tasks[0]).toMatchObject({ name: "bad", status: "FAILED", exit_code: 4 });
  });

  it("exits 2 for an invalid spec, runs nothing, and prints no record", async () => {
    const name = `invalid-${random()}`;
    const file = home.spec(
      "invalid",
      `workflow:
  name: ${name}
  tasks:
  - name: a
    image: alpine:3.18
    comand: ["echo", "typo"]
`,
    );
    const run = await troupe(["run", file, "--output", "json"], { home: home.home });
    expect(run.code, describeRun(run)).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/error E_[A-Z_]+/);
    const runs = path.join(home.home, "runs");
    expect(fs.existsSync(runs) ? fs.readdirSync(runs).filter((d) => d.startsWith(name)) : []).toEqual([]);
  });
});
