/** `troupe list`, `troupe query`, `troupe logs` over real runs, and runs refused before they start. */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, IS_ROOT, runJson, TestHome, troupe, type RunRecord } from "./helpers.js";

const home = new TestHome();
let ok: RunRecord;
let failed: RunRecord;

beforeAll(async () => {
  await ensureBuilt();
  const chatty = home.spec(
    "chatty",
    `workflow:
  name: chatty
  tasks:
  - name: talker
    image: alpine
    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2"]
`,
  );
  ok = (await runJson(chatty, { home: home.home, isolation: "none" })).record;
  const retried = home.spec(
    "retried",
    `workflow:
  name: retried
  tasks:
  - name: flaky
    image: alpine
    command: ["sh", "-c", "echo attempt; exit 1"]
    exitActions:
      RESCHEDULE: "1"
`,
  );
  failed = (await runJson(retried, { home: home.home, isolation: "none", extra: ["--max-retries", "1"] })).record;
}, 60_000);
afterAll(() => home.remove());

const cli = (args: string[]) => troupe(args, { home: home.home, env: { NO_COLOR: "1" } });

describe("troupe list", () => {
  it("lists runs newest first, with their status, and filters by status and name", async () => {
    const all = await cli(["list"]);
    expect(all.code).toBe(0);
    const lines = all.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+SUBMITTED\s+TASKS$/);
    expect(lines[1]).toMatch(new RegExp(`^${failed.id}\\s+FAILED\\s`));
    expect(lines[2]).toMatch(new RegExp(`^${ok.id}\\s+COMPLETED\\s`));
    const json = JSON.parse((await cli(["list", "--status", "COMPLETED", "--output", "json"])).stdout) as Array<{ id: string }>;
    expect(json.map((r) => r.id)).toEqual([ok.id]);
    const byName = JSON.parse((await cli(["list", "--name", "retried", "--output", "json"])).stdout) as Array<{ id: string }>;
    expect(byName.map((r) => r.id)).toEqual([failed.id]);
  });
});

describe("troupe query", () => {
  it("prints the same record as `run --output json`, by id or unique prefix", async () => {
    const byId = await cli(["query", ok.id, "--output", "json"]);
    expect(JSON.parse(byId.stdout)).toEqual(ok);
    const byPrefix = await cli(["query", "chat", "--output", "json"]);
    expect(JSON.parse(byPrefix.stdout)).toEqual(ok);
    const pretty = await cli(["query", failed.id]);
    expect(pretty.stdout).toMatch(/flaky\s+flaky-group\s+FAILED\s+1\s+1\s/);
  });

  it("says clearly when there is no such run (exit 1)", async () => {
    const missing = await cli(["query", "no-such-run-9"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/E_RUN_NOT_FOUND: no run `no-such-run-9`/);
  });
});

describe("troupe logs", () => {
  it("prints a task's complete output, stdout and stderr, and -n keeps the last lines", async () => {
    const all = await cli(["logs", ok.id, "--task", "talker"]);
    expect(all.stdout).toBe("line 1\nline 2\nline 3\nline 4\nline 5\noops\n");
    const tail = await cli(["logs", ok.id, "--task", "talker", "-n", "2"]);
    expect(tail.stdout).toBe("line 5\noops\n");
  });

  it("shows the latest attempt by default and any attempt with --retry-id", async () => {
    expect((await cli(["logs", failed.id])).stdout).toBe("attempt\n");
    expect((await cli(["logs", failed.id, "--task", "flaky", "--retry-id", "0"])).stdout).toBe("attempt\n");
    const none = await cli(["logs", failed.id, "--task", "flaky", "--retry-id", "5"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/E_ATTEMPT_NOT_FOUND/);
    const unknown = await cli(["logs", failed.id, "--task", "nobody"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/E_TASK_NOT_FOUND/);
  });
});

describe("runs refused before they start", () => {
  it("a group that could never fit the pool fails at plan time with the numbers (E_UNSCHEDULABLE, exit 2)", async () => {
    const big = home.spec(
      "big",
      `workflow:
  name: big
  resources:
    huge: {cpu: 64, memory: 1Ti}
  tasks:
  - name: hog
    image: alpine
    resource: huge
    command: ["true"]
`,
    );
    const result = await cli(["run", big, "--cpus", "2", "--memory", "4Gi"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /E_UNSCHEDULABLE: group hog-group needs cpu 64, gpu 0, memory 1Ti at once; the pool has cpu 2, gpu 0, memory 4Gi/,
    );
    const list = JSON.parse((await cli(["list", "--name", "big", "--output", "json"])).stdout) as unknown[];
    expect(list).toEqual([]);
  });

  it("without bubblewrap, tasks run as plain processes and troupe says so once; files: are refused with the reason", async () => {
    // A PATH with the tools the tasks use, and no bwrap.
    const bin = home.outsideTmp();
    for (const tool of ["sh", "cat", "true", "id"])
      fs.symlinkSync(execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(), path.join(bin, tool));
    // TROUPE_SANDBOX=bwrap: as root troupe needs no bubblewrap (its own sandbox); this is the machine without either.
    const env = { NO_COLOR: "1", PATH: bin, TROUPE_SANDBOX: "bwrap" };
    const plain = home.spec(
      "plain",
      'workflow:\n  name: plain\n  tasks:\n  - name: x\n    image: alpine\n    command: ["sh", "-c", "echo plain run; id -u; exit 3"]\n',
    );
    const withFiles = home.spec(
      "withfiles",
      'workflow:\n  name: withfiles\n  tasks:\n  - name: y\n    image: alpine\n    files: [{path: /tmp/a.txt, contents: hi}]\n    command: ["cat", "/tmp/a.txt"]\n',
    );
    if (IS_ROOT) {
      // As root, no task runs without a sandbox.
      const refused = await troupe(["run", plain], { home: home.home, env });
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(/as root, troupe runs no task without one \(apt-get install bubblewrap/);
      expect(refused.stdout).toMatch(/x +: FAILED_START_ERROR/);
    }
    // An unprivileged user (troupe itself run as nobody when the tests run as root): plain processes of that user.
    const own = home.outsideTmp();
    if (IS_ROOT) fs.chownSync(own, 65534, 65534);
    // The files where that user reads them.
    for (const file of [plain, withFiles]) fs.copyFileSync(file, path.join(own, path.basename(file)));
    const asUser = IS_ROOT ? 65534 : undefined;
    const ownHome = path.join(own, "home");
    const result = await troupe(["run", path.join(own, path.basename(plain))], { home: ownHome, env, asUser });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout.split("\n")[0]).toMatch(/runtime: host, isolation: none \(plain processes: bubblewrap is not installed\)/);
    expect(result.stdout.match(/bubblewrap \(bwrap\) is not installed/g)).toHaveLength(1);
    expect(result.stdout).toMatch(/x +\| plain run/);
    if (IS_ROOT) expect(result.stdout).toMatch(/x +\| 65534$/m);
    const query = await troupe(["query", "plain-1", "--output", "json"], { home: ownHome });
    const record = JSON.parse(query.stdout) as RunRecord;
    expect(record.groups[0]!.tasks[0]).toMatchObject({ status: "FAILED", exit_code: 3 });

    const refused = await troupe(["run", path.join(own, path.basename(withFiles)), "--output", "json"], { home: ownHome, env, asUser });
    const task = (JSON.parse(refused.stdout) as RunRecord).groups[0]!.tasks[0]!;
    expect(task).toMatchObject({ status: "FAILED_START_ERROR", exit_code: 3003 });
  });

  it("an invalid spec exits 2 with its diagnostics and records nothing", async () => {
    const bad = home.spec("bad", "workflow:\n  name: bad\n  tasks:\n  - name: x\n    image: alpine\n    comand: [true]\n");
    const result = await cli(["run", bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/error E_UNKNOWN_FIELD: unknown field `comand`/);
  });
});
