/**
 * Local parity with the server's client, over a real TROUPE_HOME and real
 * troupe processes: `troupe logs -f` follows a run another process is driving
 * until it ends, `troupe cancel` stops runs started in other terminals (and
 * settles one whose process is gone), `troupe events` shows the transitions,
 * `troupe restart` runs again only what did not complete, reusing outputs.
 */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ensureBuilt,
  killStartedRuns,
  processesWith,
  sleepMarkers,
  TestHome,
  troupe,
  waitFor,
  type RunRecord,
  type TroupeResult,
} from "../run/helpers.js";

const home = new TestHome();
const sleepers = sleepMarkers(7);
const HOST = ["--runtime", "host", "--isolation", "none"];

beforeAll(ensureBuilt, 200_000);
afterAll(() => {
  killStartedRuns();
  sleepers.killAll();
  home.remove();
});

const cli = (args: string[], timeoutMs = 30_000) => troupe(args, { home: home.home, env: { NO_COLOR: "1" }, timeoutMs });

async function record(id: string): Promise<RunRecord> {
  const query = await cli(["query", id, "--output", "json"]);
  expect(query.code, query.stderr).toBe(0);
  return JSON.parse(query.stdout) as RunRecord;
}

/** `troupe run FILE` in the background, as in another terminal; resolves with the child once its run has tasks RUNNING. */
async function startRun(file: string, runId: string, extra: string[] = []): Promise<{ done: Promise<TroupeResult>; child: ChildProcess }> {
  let child!: ChildProcess;
  const done = troupe(["run", file, ...HOST, ...extra], {
    home: home.home,
    env: { NO_COLOR: "1" },
    timeoutMs: 60_000,
    onSpawn: (c) => (child = c),
  });
  const running = await waitFor(
    () => {
      try {
        const db = path.join(home.home, "troupe.db");
        return fs.existsSync(db) ? queryStatus(runId) : "";
      } catch {
        return "";
      }
    },
    (status) => status === "RUNNING",
    20_000,
    100,
  );
  expect(running, `run ${runId} did not start`).toBe("RUNNING");
  return { done, child };
}

/** The run's task statuses, read straight from the database (no troupe process needed). */
function queryStatus(runId: string): string {
  const db = new Database(path.join(home.home, "troupe.db"), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT status FROM tasks WHERE run_id = ?").pluck().all(runId) as string[];
    return rows.length > 0 && rows.every((s) => s === "RUNNING") ? "RUNNING" : rows.join(",");
  } finally {
    db.close();
  }
}

describe("troupe logs -f", () => {
  it("follows every task of a running run, prefixed as the live view, next attempts too, and ends when the run ends", async () => {
    const file = home.spec(
      "follow",
      `workflow:
  name: follow
  tasks:
  - name: ticker
    image: alpine
    command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.5; done"]
  - name: flaky
    image: alpine
    command: ["sh", "-c", "sleep 1.5; echo try; exit 3"]
    exitActions:
      RESCHEDULE: "3"
  - name: accent
    image: alpine
    # An é written in two halves, read in between: printed whole.
    command: ["sh", "-c", "sleep 0.5; printf 'caf\\\\303'; sleep 1; printf '\\\\251\\\\n'"]
`,
    );
    const run = await startRun(file, "follow-1", ["--max-retries", "1"]);
    const followed = await cli(["logs", "follow-1", "-f"]);
    const ran = await run.done;
    expect(ran.code, ran.stderr).toBe(1);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.timedOut).toBe(false);
    const lines = followed.stdout.trimEnd().split("\n");
    // The live view's prefixes: names padded to the longest (at least 4), then `|`.
    expect(lines.filter((l) => l.startsWith("ticker |"))).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((i) => `ticker | tick ${i}`));
    // (The follow starts while the first attempt still runs: it ends 1.5 s after the tasks started.)
    expect(
      lines.filter((l) => l.startsWith("flaky  |")),
      followed.stdout,
    ).toEqual(["flaky  | try", "flaky  | --- retry 1 ---", "flaky  | try"]);
    expect(lines.filter((l) => l.startsWith("accent |"))).toEqual(["accent | café"]);
    // The same lines as the run printed of its tasks.
    const printed = ran.stdout.split("\n").filter((l) => / \| /.test(l));
    expect(lines.filter((l) => !l.includes("--- retry"))).toEqual(expect.arrayContaining(printed));

    // One task: its bytes as they are, no prefix; an ended run's logs end at once.
    const one = await cli(["logs", "follow-1", "--task", "ticker", "-f", "-n", "2"]);
    expect(one.stdout).toBe("tick 7\ntick 8\n");
    const all = await cli(["logs", "follow-1"]);
    expect(all.stdout).toMatch(/^ticker \| tick 1$/m);
  }, 60_000);
});

describe("troupe cancel", () => {
  const longRun = (name: string, marker: string) =>
    home.spec(
      name,
      `workflow:
  name: ${name}
  tasks:
  - name: sleeper
    image: alpine
    command: ["sleep", "${marker}"]
  - name: polite
    image: alpine
    command: ["sh", "-c", "trap 'echo stopping politely; exit 0' TERM; while true; do sleep 0.1; done"]
`,
    );

  it("stops runs started in other terminals: FAILED_CANCELED with the message, their tasks gone, the runs' exit 130", async () => {
    const markers = [sleepers.sleep(300), sleepers.sleep(300)];
    const first = await startRun(longRun("cancel-a", markers[0]!), "cancel-a-1");
    const second = await startRun(longRun("cancel-b", markers[1]!), "cancel-b-1");
    expect(processesWith(markers[0]!)).not.toEqual([]);

    const canceled = await cli(["cancel", "cancel-a-1", "cancel-b", "--message", "wrong learning rate"]);
    expect(canceled.code, canceled.stderr).toBe(0);
    expect(canceled.stdout).toMatch(/^cancel-a-1: FAILED_CANCELED$/m);
    expect(canceled.stdout).toMatch(/^cancel-b-1: FAILED_CANCELED$/m);
    for (const run of [first, second]) {
      const result = await run.done;
      expect(result.code, result.stderr).toBe(130);
      expect(result.stdout).toMatch(/troupe: canceled by `troupe cancel`: wrong learning rate; stopping the run/);
    }
    for (const marker of markers) expect(processesWith(marker)).toEqual([]);
    const a = await record("cancel-a-1");
    expect(a.status).toBe("FAILED_CANCELED");
    expect(a.end_time).not.toBeNull();
    for (const task of a.groups.flatMap((g) => g.tasks)) {
      expect(task.status).toBe("FAILED_CANCELED");
      expect(task.end_time).not.toBeNull();
      expect((task as { reason?: string }).reason).toBe("canceled by `troupe cancel`: wrong learning rate");
    }
    expect(fs.readFileSync(home.logPath("cancel-a-1", "polite"), "utf8")).toBe("stopping politely\n");
    const query = await cli(["query", "cancel-a-1"]);
    expect(query.stdout).toMatch(/polite\s+polite-group\s+FAILED_CANCELED\s.*canceled by `troupe cancel`: wrong learning rate/);

    // Asked again: it had ended.
    const again = await cli(["cancel", "cancel-a-1"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("cancel-a-1 had ended already: FAILED_CANCELED\n");
  }, 90_000);

  it("--force stops the tasks at once; --no-wait returns at once; a run that does not stop in time is an error, the cancel stays asked", async () => {
    const marker = sleepers.sleep(300);
    const run = await startRun(longRun("forced", marker), "forced-1");
    // Stopped, the run's process cannot take the request: the cancel times out, and stays asked.
    run.child.kill("SIGSTOP");
    const late = await cli(["cancel", "forced-1", "--timeout", "1"]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/E_CANCEL_TIMEOUT: run forced-1 is still RUNNING after 1s; the cancel stays asked/);
    const forced = await cli(["cancel", "forced-1", "--force", "--no-wait"]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toBe("canceling forced-1\n");
    run.child.kill("SIGCONT");
    const result = await run.done;
    expect(result.code, result.stderr).toBe(130);
    expect(processesWith(marker)).toEqual([]);
    // Forced: no grace, so the polite task's trap never ran.
    expect(fs.readFileSync(home.logPath("forced-1", "polite"), "utf8")).toBe("");
    const reasons = (await record("forced-1")).groups.flatMap((g) => g.tasks).map((t) => (t as { reason?: string }).reason);
    expect(reasons).toEqual(["canceled by `troupe cancel` (forced)", "canceled by `troupe cancel` (forced)"]);
  }, 60_000);

  it("settles a run whose troupe process is gone, as the orphan sweep does; an unknown run is an error, the others still canceled", async () => {
    const marker = sleepers.sleep(300);
    const run = await startRun(longRun("orphan", marker), "orphan-1");
    run.child.kill("SIGKILL");
    await run.done;
    await waitFor(
      () => processesWith(marker).length,
      (n) => n === 0,
      10_000,
    );
    const canceled = await cli(["cancel", "orphan-1", "no-such-run-7"]);
    expect(canceled.code).toBe(1);
    expect(canceled.stdout).toMatch(/^orphan-1: FAILED_SERVER_ERROR \(its troupe process had ended; the run is settled\)$/m);
    expect(canceled.stderr).toMatch(/E_RUN_NOT_FOUND: no run `no-such-run-7`/);
    // Followed while its process dies, a run's logs end once it is settled, not never.
    const marker2 = sleepers.sleep(300);
    const dying = await startRun(longRun("dying", marker2), "dying-1");
    const following = cli(["logs", "dying-1", "-f"]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    dying.child.kill("SIGKILL");
    const followed = await following;
    expect(followed.timedOut).toBe(false);
    expect(followed.code, followed.stderr).toBe(0);
    expect((await record("dying-1")).status).toBe("FAILED_SERVER_ERROR");

    const settled = await record("orphan-1");
    expect(settled.status).toBe("FAILED_SERVER_ERROR");
    expect(settled.groups.flatMap((g) => g.tasks).map((t) => (t as { reason?: string }).reason)).toEqual([
      "the troupe process running it ended before the run did",
      "the troupe process running it ended before the run did",
    ]);
  }, 60_000);
});

describe("troupe events and troupe restart", () => {
  it("restart runs only what did not complete, with the run's spec and variables, reusing outputs; events say why", async () => {
    const flags = home.outsideTmp();
    fs.writeFileSync(path.join(home.specs, "greeting.txt"), "hello from a localpath file\n");
    const file = home.spec(
      "steps",
      `workflow:
  name: steps-{{ tag }}
  groups:
  - name: make
    tasks:
    - name: maker
      lead: true
      image: alpine
      command: ["sh", "-c", "cat /tmp/greeting.txt > {{output}}/made.txt; echo made-{{ tag }} >> {{output}}/made.txt; echo making"]
      files:
      - path: /tmp/greeting.txt
        localpath: greeting.txt
  - name: use
    tasks:
    - name: user
      lead: true
      image: alpine
      inputs: [{task: maker}]
      command: ["sh", "-c", "[ -e ${flags}/ready ] || { echo not ready; exit 1; }; cat {{input:0}}/made.txt"]
`,
    );
    const first = await cli(["run", file, ...HOST, "--set", "tag=a"]);
    expect(first.code, first.stderr).toBe(1);
    expect(first.stdout).toMatch(/run steps-a-1: FAILED/);

    const events = await cli(["events", "steps-a-1"]);
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(/^\S+Z {2}workflow {2}PENDING -> RUNNING {2}run started$/m);
    expect(events.stdout).toMatch(/^\S+Z {2}use\/user {2}RUNNING -> FAILED {2}exited with 1$/m);
    expect(events.stdout).toMatch(/^\S+Z {2}workflow {2}RUNNING -> FAILED {2}a group did not complete$/m);
    const userEvents = JSON.parse((await cli(["events", "steps-a-1", "--task", "user", "--output", "json"])).stdout) as Array<{
      task: string;
      to: string;
    }>;
    expect(userEvents.every((e) => e.task === "user")).toBe(true);
    expect(userEvents.map((e) => e.to)).toEqual(["WAITING", "SCHEDULING", "INITIALIZING", "RUNNING", "FAILED"]);

    // Failed again: a restart of the restart still finds the maker's outputs, in the first run.
    const second = await cli(["restart", "steps-a-1", ...HOST]);
    expect(second.code, second.stderr).toBe(1);
    expect(second.stdout).toMatch(/run steps-a-2: restart of steps-a-1/);
    fs.writeFileSync(path.join(flags, "ready"), "");
    const third = await cli(["restart", "steps-a-2", ...HOST, "--output", "json"]);
    expect(third.code, third.stderr).toBe(0);
    const restarted = JSON.parse(third.stdout) as RunRecord;
    expect(restarted.id).toBe("steps-a-3");
    expect(restarted.groups.map((g) => [g.name, g.status])).toEqual([
      ["make", "COMPLETED"],
      ["use", "COMPLETED"],
    ]);
    expect(restarted.groups.map((g) => [g.reused_from, g.tasks[0]!.reused_from])).toEqual([
      ["steps-a-1", "steps-a-1"],
      [undefined, undefined],
    ]);
    expect(fs.existsSync(home.logPath("steps-a-3", "maker"))).toBe(false);
    expect(home.log("steps-a-3", "user")).toBe("hello from a localpath file\nmade-a\n");

    // Reused tasks say where from, in the summary and the logs (the log of the run they ran in).
    const query = await cli(["query", "steps-a-3"]);
    expect(query.stdout).toMatch(/^maker\s+make\s+COMPLETED\s+0\s+0\s+-\s+-\s+reused from steps-a-1$/m);
    const logs = await cli(["logs", "steps-a-3", "--task", "maker"]);
    expect(logs.stdout).toBe("making\n");
    expect(logs.stderr).toMatch(/task maker did not run in steps-a-3: it is reused from steps-a-1/);
    const allLogs = await cli(["logs", "steps-a-3"]);
    expect(allLogs.stdout).toBe("maker | making\nuser  | hello from a localpath file\nuser  | made-a\n");

    const completed = await cli(["restart", "steps-a-3", ...HOST]);
    expect(completed.code).toBe(2);
    expect(completed.stderr).toMatch(/E_NOT_RESTARTABLE: run steps-a-3 is COMPLETED; only a failed run is restarted/);
    const unknown = await cli(["restart", "nope-1"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/E_RUN_NOT_FOUND/);
  }, 90_000);
});
