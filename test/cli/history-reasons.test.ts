/**
 * History that explains itself, over real runs and a real server: `troupe
 * query` and `troupe workflow query` give each task's reason (its exit code
 * and what it means, the timeout, the upstream group that failed, the member
 * whose failure ended its group, where a reused task ran), and listing by
 * status means what a user means (FAILED: failed in any way), by name a part
 * of it, with an unknown status refused and an empty result saying why.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exitCodeMeaning, taskReason } from "../../src/cli/task-reasons.js";
import { ensureBuilt, TestHome, troupe, type RunRecord } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";

const home = new TestHome();
const HOST = ["--runtime", "host", "--isolation", "none"];
let failed: RunRecord;
let timedOut: RunRecord;
let completed: RunRecord;

const cli = (args: string[], env: Record<string, string> = {}) =>
  troupe(args, { home: home.home, env: { NO_COLOR: "1", ...env }, timeoutMs: 60_000 });

/** Why each task failed: a workflow of every kind of ending. */
const REASONS = `workflow:
  name: reasons
  groups:
  - name: killed
    tasks:
    - name: hog
      lead: true
      image: alpine
      command: ["sh", "-c", "kill -9 $$"]
  - name: after-killed
    tasks:
    - name: consumer
      lead: true
      image: alpine
      inputs: [{task: hog}]
      command: ["true"]
  - name: missing
    tasks:
    - name: typo
      lead: true
      image: alpine
      command: ["sh", "-c", "no-such-command-here"]
  - name: pair
    ignoreNonleadStatus: false
    tasks:
    - name: leader
      lead: true
      image: alpine
      command: ["sleep", "30"]
    - name: worker
      image: alpine
      command: ["sh", "-c", "exit 2"]
  - name: terminated
    tasks:
    - name: quitter
      lead: true
      image: alpine
      command: ["sh", "-c", "kill -TERM $$"]
  - name: fine
    tasks:
    - name: ok
      lead: true
      image: alpine
      command: ["true"]
`;

async function runRecord(name: string, text: string, expected: number): Promise<RunRecord> {
  const result = await cli(["run", home.spec(name, text), ...HOST, "--output", "json"]);
  expect(result.code, result.stderr).toBe(expected);
  return JSON.parse(result.stdout) as RunRecord;
}

beforeAll(async () => {
  await ensureBuilt();
  failed = await runRecord("reasons", REASONS, 1);
  timedOut = await runRecord(
    "slow",
    `workflow:
  name: slowpoke
  timeout:
    exec_timeout: 1s
  tasks:
  - name: dawdler
    image: alpine
    command: ["sleep", "30"]
`,
    1,
  );
  completed = await runRecord("quick", `workflow:\n  name: quick\n  tasks:\n  - name: done\n    image: alpine\n    command: ["true"]\n`, 0);
}, 200_000);
afterAll(() => home.remove());

const reasonOf = (record: RunRecord, task: string) =>
  (record.groups.flatMap((g) => g.tasks).find((t) => t.name === task) as { reason: string | null } | undefined)?.reason;

describe("each task's reason", () => {
  it("is in the record: the reason of the task's last change", () => {
    expect(reasonOf(failed, "hog")).toBe("exited with 137");
    expect(reasonOf(failed, "consumer")).toBe("upstream group killed did not complete");
    expect(reasonOf(failed, "typo")).toBe("exited with 127");
    expect(reasonOf(failed, "worker")).toBe("exited with 2");
    expect(reasonOf(failed, "leader")).toBe("group failed: worker failed");
    expect(reasonOf(failed, "ok")).toBe("exited with 0");
    expect(reasonOf(timedOut, "dawdler")).toBe("ran longer than the exec timeout (1s)");
  });

  it("`troupe query` shows it with what the exit code means", async () => {
    const query = await cli(["query", failed.id]);
    expect(query.code).toBe(0);
    const rows = query.stdout.split("\n");
    expect(rows[1]).toMatch(/^TASK\s+GROUP\s+STATUS\s+EXIT\s+RETRY\s+DURATION\s+IP\s+REASON$/);
    const row = (task: string) => rows.find((r) => r.startsWith(`${task} `)) ?? "";
    expect(row("hog")).toMatch(/FAILED\s+137\s.*exited with 137 \(killed by SIGKILL: out of memory, or stopped by force\)$/);
    expect(row("consumer")).toMatch(/FAILED_UPSTREAM\s+3000\s.*upstream group killed did not complete$/);
    expect(row("typo")).toMatch(/exited with 127 \(command not found\)$/);
    expect(row("quitter")).toMatch(/exited with 143 \(killed by SIGTERM: asked to stop\)$/);
    expect(row("leader")).toMatch(/FAILED\s.*group failed: worker failed$/);
    expect(row("ok")).toMatch(/COMPLETED\s+0\s.*\s-$/);
    expect((await cli(["query", timedOut.id])).stdout).toMatch(
      /dawdler\s.*FAILED_EXEC_TIMEOUT\s.*ran longer than the exec timeout \(1s\)$/m,
    );
  });

  it("says what exit codes mean, and keeps a runtime's own explanation", () => {
    expect(exitCodeMeaning(137)).toBe("killed by SIGKILL: out of memory, or stopped by force");
    expect(exitCodeMeaning(139)).toBe("killed by SIGSEGV: a segmentation fault");
    expect(exitCodeMeaning(3004)).toBe("evicted");
    expect(exitCodeMeaning(1)).toBeUndefined();
    expect(exitCodeMeaning(42)).toBeUndefined();
    const task = (status: string, exit_code: number | null, reason: string | null) => ({ status, exit_code, reason });
    expect(taskReason(task("FAILED", 137, "exited with 137 (killed: more memory than its limit)"))).toBe(
      "exited with 137 (killed: more memory than its limit)",
    );
    expect(taskReason(task("FAILED", 1, "exited with 1: RESCHEDULE, but no retries are left (limit 1)"))).toBe(
      "exited with 1: RESCHEDULE, but no retries are left (limit 1)",
    );
    expect(taskReason(task("FAILED", 134, "exited with 134: RESCHEDULE, but no retries are left (limit 1)"))).toBe(
      "exited with 134 (killed by SIGABRT: aborted, often a failed assertion): RESCHEDULE, but no retries are left (limit 1)",
    );
    // Records made before troupe kept reasons.
    expect(taskReason(task("FAILED", 139, null))).toBe("exited with 139 (killed by SIGSEGV: a segmentation fault)");
    expect(taskReason(task("COMPLETED", 0, null))).toBe("-");
  });
});

describe("troupe list filters", () => {
  it("FAILED lists the runs that failed in any way; other statuses exactly", async () => {
    const ids = (stdout: string) => (JSON.parse(stdout) as Array<{ id: string }>).map((r) => r.id);
    const anyFailure = await cli(["list", "--status", "FAILED", "--output", "json"]);
    expect(anyFailure.code, anyFailure.stderr).toBe(0);
    expect(ids(anyFailure.stdout)).toEqual([timedOut.id, failed.id]);
    expect(timedOut.status).toBe("FAILED_EXEC_TIMEOUT");
    expect(ids((await cli(["list", "--status", "failed_exec_timeout", "--output", "json"])).stdout)).toEqual([timedOut.id]);
    expect(ids((await cli(["list", "--status", "COMPLETED", "--output", "json"])).stdout)).toEqual([completed.id]);
  });

  it("refuses a status no run has, listing those there are (exit 2)", async () => {
    const bogus = await cli(["list", "--status", "BOGUS"]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/E_UNKNOWN_STATUS: no run status `BOGUS`; the statuses are PENDING, RUNNING, .*FAILED_EXEC_TIMEOUT/);
    expect(bogus.stdout).toBe("");
  });

  it("--name matches a part of the name; an empty result says what was filtered", async () => {
    const byPart = await cli(["list", "--name", "EASON"]);
    expect(byPart.stdout).toMatch(new RegExp(`^${failed.id}\\s+FAILED\\s`, "m"));
    expect(byPart.stdout.trim().split("\n")).toHaveLength(2);
    const none = await cli(["list", "--name", "ddp"]);
    expect(none.code).toBe(0);
    expect(none.stderr).toBe("no runs whose name contains `ddp`\n");
    expect(none.stdout).toBe("");
    const noneRunning = await cli(["list", "--status", "running", "--name", "quick"]);
    expect(noneRunning.stderr).toBe("no runs with status RUNNING, whose name contains `quick`\n");
  });
});

describe("the server: workflow query and list mean the same", () => {
  let server: StartedServer | undefined;
  let serverHome: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    serverHome = home.outsideTmp();
    const made = await cli(["server", "token", "create", "alice", "--home", serverHome]);
    expect(made.code, made.stderr).toBe(0);
    server = await startServer(serverHome, HOST);
    env = { TROUPE_SERVER: server.url, TROUPE_TOKEN: made.stdout.trim(), XDG_CONFIG_HOME: home.outsideTmp() };
  }, 60_000);
  afterAll(async () => server?.stop());

  it("workflow query gives reasons; a restart's reused tasks say where from, and their logs are those of the run they ran in", async () => {
    const flags = home.outsideTmp();
    const file = home.spec(
      "server-steps",
      `workflow:
  name: server-steps
  groups:
  - name: make
    tasks:
    - name: maker
      lead: true
      image: alpine
      command: ["sh", "-c", "echo made > {{output}}/made.txt; echo making"]
  - name: use
    tasks:
    - name: user
      lead: true
      image: alpine
      inputs: [{task: maker}]
      command: ["sh", "-c", "[ -e ${flags}/ready ] || kill -9 $$; cat {{input:0}}/made.txt"]
`,
    );
    const first = await cli(["workflow", "submit", file, "--wait", "--output", "json"], env);
    expect(first.code, first.stderr).toBe(1);
    const failedRun = JSON.parse(first.stdout) as RunRecord;
    const query = await cli(["workflow", "query", failedRun.id], env);
    expect(query.stdout).toMatch(
      /^user\s+use\s+FAILED\s+137\s.*exited with 137 \(killed by SIGKILL: out of memory, or stopped by force\)$/m,
    );

    fs.writeFileSync(path.join(flags, "ready"), "");
    const again = await cli(["workflow", "restart", failedRun.id, "--wait", "--output", "json"], env);
    expect(again.code, again.stderr).toBe(0);
    const restarted = JSON.parse(again.stdout) as RunRecord;
    expect(reasonOf(restarted, "maker")).toBe(`completed in run ${failedRun.id}: its outputs are reused`);
    const restartedQuery = await cli(["workflow", "query", restarted.id], env);
    expect(restartedQuery.stdout).toMatch(new RegExp(`^maker\\s+make\\s+COMPLETED\\s+0\\s.*reused from ${failedRun.id}$`, "m"));
    const queried = JSON.parse((await cli(["workflow", "query", restarted.id, "--output", "json"], env)).stdout) as RunRecord;
    expect(queried.groups[0]).toMatchObject({
      name: "make",
      reused_from: failedRun.id,
      tasks: [{ name: "maker", reused_from: failedRun.id }],
    });
    expect(queried.groups[1]).not.toHaveProperty("reused_from");
    expect((await cli(["workflow", "logs", restarted.id, "--task", "maker"], env)).stdout).toBe("making\n");
  }, 60_000);

  it("lists FAILED as every FAILED_*, names by a part; refuses an unknown status with the valid ones (400)", async () => {
    const list = async (query: string) => {
      const response = await fetch(`${server!.url}/api/workflow?${query}`, { headers: { authorization: `Bearer ${env.TROUPE_TOKEN}` } });
      return {
        status: response.status,
        body: (await response.json()) as { workflows?: Array<{ status: string; name: string }>; error?: string },
      };
    };
    const canceled = await cli(
      [
        "workflow",
        "submit",
        home.spec("napper", `workflow:\n  name: napper\n  tasks:\n  - name: nap\n    image: alpine\n    command: ["sleep", "30"]\n`),
      ],
      env,
    );
    const id = /submitted (\S+)/.exec(canceled.stdout)![1]!;
    expect((await cli(["workflow", "cancel", id, "--force"], env)).code).toBe(0);
    for (let i = 0; i < 100 && !/^FAILED/.test((await list("name=napper")).body.workflows?.[0]?.status ?? ""); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    const failures = await list("status=FAILED");
    expect(failures.status).toBe(200);
    expect(failures.body.workflows!.map((w) => w.status).sort()).toEqual(["FAILED", "FAILED_CANCELED"]);
    expect((await list("name=STEPS")).body.workflows!.map((w) => w.name)).toEqual(["server-steps", "server-steps"]);
    const bogus = await list("status=BOGUS");
    expect(bogus.status).toBe(400);
    expect(bogus.body.error).toMatch(/no run status `BOGUS`; the statuses are PENDING, .*FAILED_CANCELED/);
  }, 60_000);
});
