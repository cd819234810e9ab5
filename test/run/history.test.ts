/** `troupe list`, `troupe query`, `troupe logs` over real runs, and runs refused before they start. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runJson, TestHome, troupe, type RunRecord } from "./helpers.js";

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
      /E_UNSCHEDULABLE: group hog-group needs cpu 64, gpu 0, memory 1024Gi at once; the pool has cpu 2, gpu 0, memory 4Gi/,
    );
    const list = JSON.parse((await cli(["list", "--name", "big", "--output", "json"])).stdout) as unknown[];
    expect(list).toEqual([]);
  });

  it("a run whose runtime cannot start (no bubblewrap on PATH) is recorded FAILED_BACKEND_ERROR and exits 1", async () => {
    const simple = home.spec("simple", 'workflow:\n  name: nobwrap\n  tasks:\n  - name: x\n    image: alpine\n    command: ["true"]\n');
    const emptyBin = home.outsideTmp();
    const result = await troupe(["run", simple, "--isolation", "none"], { home: home.home, env: { NO_COLOR: "1", PATH: emptyBin } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/E_RUNTIME: run nobwrap-1 could not start: the host runtime needs bubblewrap/);
    const record = JSON.parse((await cli(["query", "nobwrap-1", "--output", "json"])).stdout) as RunRecord;
    expect(record.status).toBe("FAILED_BACKEND_ERROR");
  });

  it("an invalid spec exits 2 with its diagnostics and records nothing", async () => {
    const bad = home.spec("bad", "workflow:\n  name: bad\n  tasks:\n  - name: x\n    image: alpine\n    comand: [true]\n");
    const result = await cli(["run", bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/error E_UNKNOWN_FIELD: unknown field `comand`/);
  });
});
