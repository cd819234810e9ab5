/**
 * Acceptance: the tutorial's three workflows (examples/) run verbatim with
 * `troupe run` and do what the tutorial says. The slow verbatim runs (about
 * 25 s and 40 s of the workflows' own sleeping) run concurrently. On every
 * target, the Slurm test cluster included (slurm-target.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import {
  EXAMPLES,
  RUN_TARGETS,
  describeRun,
  killStartedRuns,
  groupOf,
  ms,
  runJson,
  taskOf,
  type RunRecord,
  type RunTarget,
} from "./helpers.js";
import { skipReason, SLURM, targetTitle, warnIfSkipped } from "./slurm-target.js";
import { holdClusterDuring, suiteHomes } from "./target-homes.js";

warnIfSkipped("test/run/tutorial.test.ts");
const homeOf = suiteHomes();
// The lock on the cluster, held while this file runs: its slurm tests run alongside the others.
if (SLURM.cluster) holdClusterDuring("slurm");

// The tests run concurrently: runs left over (a test timed out) are killed only at the end.
afterAll(() => killStartedRuns());

const example = (name: string) => path.join(EXAMPLES, name);
const exampleText = (name: string) => fs.readFileSync(example(name), "utf8");

/**
 * The tests of this file run concurrently so that the slow verbatim runs (which
 * mostly sleep) overlap; the quick ones, whose timings are the point, take
 * turns among themselves so that they do not compete for the two cores.
 */
let turn: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(body: () => Promise<T>): Promise<T> {
  const mine = turn.then(body);
  turn = mine.catch(() => undefined);
  return mine;
}

/** Start times of every task of the run, in ms. */
/** When each group of run `runId` was submitted to the cluster (ms), as the troupe.db of `home` holds it. */
function submissionTimes(home: string, runId: string): number[] {
  const db = new Database(path.join(home, "troupe.db"), { readonly: true });
  try {
    const rows = db
      .prepare(
        "SELECT time FROM transitions WHERE run_id = ? AND subject = 'group' AND reason LIKE 'submitted to the cluster%' ORDER BY time",
      )
      .all(runId) as Array<{ time: number }>;
    return rows.map((row) => row.time);
  } finally {
    db.close();
  }
}

const starts = (record: RunRecord) => record.groups.flatMap((g) => g.tasks.map((t) => ms(t.start_time)));
const ends = (record: RunRecord) => record.groups.flatMap((g) => g.tasks.map((t) => ms(t.end_time)));

/** `body`'s tests on every target, those of a target that cannot run here skipped (the reason in the title). */
function onEachTarget(title: string, body: (target: RunTarget) => void): void {
  for (const target of RUN_TARGETS)
    describe.skipIf(skipReason(target) !== undefined)(`${title}, on ${targetTitle(target)}`, () => body(target));
}

describe.concurrent("tutorial workflows", () => {
  // The slow ones first: at most six tests run at once.
  for (const target of ["netns", "container", "slurm"] as const)
    it.skipIf(skipReason(target) !== undefined)(
      `group_tasks.yaml runs verbatim (${targetTitle(target)}): members start within 100 ms, all complete`,
      { timeout: 90_000 },
      async () => {
        const home = homeOf(target);
        const run = await runJson(example("group_tasks.yaml"), { home: home.home, target, timeoutMs: 80_000 });
        expect(run.code, describeRun(run)).toBe(0);
        expect(run.record.status).toBe("COMPLETED");
        const group = groupOf(run.record, "parallel-processing");
        expect(group.status).toBe("COMPLETED");
        expect(group.tasks.map((t) => [t.name, t.lead, t.status, t.exit_code])).toEqual([
          ["processor-1", true, "COMPLETED", 0],
          ["processor-2", false, "COMPLETED", 0],
          ["processor-3", false, "COMPLETED", 0],
        ]);
        const spread = Math.max(...starts(run.record)) - Math.min(...starts(run.record));
        expect(spread).toBeLessThanOrEqual(100);
        const ranges: Record<string, [number, number]> = { "processor-1": [1, 5], "processor-2": [6, 10], "processor-3": [11, 15] };
        for (const [name, [from, to]] of Object.entries(ranges)) {
          const n = name.slice(-1);
          const expected = [`Processor ${n}: Starting...`];
          for (let i = from; i <= to; i++) expected.push(`Processor ${n}: Processing item ${i}`);
          expected.push(`Processor ${n}: Complete`);
          expect(home.log(run.record.id, name).trimEnd().split("\n")).toEqual(expected);
        }
        // The lead sleeps 5 x 5 s; the group ends with it.
        expect(ms(taskOf(run.record, "processor-1").end_time) - ms(taskOf(run.record, "processor-1").start_time)).toBeGreaterThanOrEqual(
          24_000,
        );
      },
    );

  onEachTarget("group_tasks_communication.yaml", (target) => {
    it("runs verbatim: the client receives the server's hello through {{host:server}}", { timeout: 100_000 }, async () => {
      const home = homeOf(target);
      // Verbatim on every target: on Slurm each member has a private /tmp in its node's sandbox, as in a container.
      const file = example("group_tasks_communication.yaml");
      // With openbsd netcat the client waits for 30 s of silence (-w 30) before it quits, then the server sleeps 10 s.
      // If the client misses the server, the server's `nc -l` waits forever: stop early then, the test has failed anyway.
      let runId: string | undefined;
      let poll: NodeJS.Timeout | undefined;
      const run = await runJson(file, {
        home: home.home,
        target,
        timeoutMs: 80_000,
        onSpawn: (child) => {
          child.stderr?.on("data", (d: Buffer) => (runId ??= /troupe: run (\S+):/.exec(d.toString())?.[1]));
          poll = setInterval(() => {
            if (!runId) return;
            const log = path.join(home.home, "runs", runId, "logs", "client.0.log");
            if (
              fs.existsSync(log) &&
              /Client: Complete/.test(fs.readFileSync(log, "utf8")) &&
              !/from server: hello/.test(fs.readFileSync(log, "utf8"))
            ) {
              child.kill("SIGINT");
              clearInterval(poll);
            }
          }, 200);
        },
      }).finally(() => clearInterval(poll));
      const clientLog = home.log(run.record.id, "client");
      const server = taskOf(run.record, "server");
      expect(server.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      if (target === "slurm") {
        // {{host:server}} is the address of the server's node (a cluster has no names of troupe's), the other node's.
        expect(clientLog).toContain(`Calling server at ${server.ip}...`);
        expect(taskOf(run.record, "client").ip).not.toBe(server.ip);
      } else {
        // {{host:server}} is the server's DNS name, as in OSMO (test/run/dns-names.test.ts: it resolves to server.ip).
        expect(clientLog).toContain("Calling server at server.parallel-processing.troupe.internal...");
      }
      expect(clientLog, `client log:\n${clientLog}\n${describeRun(run)}`).toContain("Received from server: hello\n");
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.record.status).toBe("COMPLETED");
      expect(server).toMatchObject({ lead: true, status: "COMPLETED", exit_code: 0 });
      expect(taskOf(run.record, "client")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      expect(home.log(run.record.id, "server")).toBe("Server: Starting...\nServer: Complete\n");
      if (target !== "none") expect(server.ip).toMatch(/^10\./);
      else expect(server.ip).toMatch(/^127\./);
    });
  });
  onEachTarget("parallel_tasks.yaml", (target) => {
    it("runs verbatim: every task completes and prints its greeting", () =>
      oneAtATime(async () => {
        const home = homeOf(target);
        const run = await runJson(example("parallel_tasks.yaml"), { home: home.home, target });
        expect(run.code, describeRun(run)).toBe(0);
        expect(run.record.status).toBe("COMPLETED");
        expect(run.record.groups.map((g) => g.name).sort()).toEqual(["task-a-group", "task-b-group", "task-c-group"]);
        for (const name of ["task-a", "task-b", "task-c"]) {
          const task = taskOf(run.record, name);
          expect(task, name).toMatchObject({ status: "COMPLETED", exit_code: 0, retry_id: 0, lead: true });
          expect(home.log(run.record.id, name)).toBe(`Hello from ${name}\n`);
        }
      }));

    it("runs the tasks in parallel: with a short sleep added, their run times overlap", () =>
      oneAtATime(async () => {
        const home = homeOf(target);
        // The verbatim tasks end in a millisecond; the same workflow with each task sleeping 1 s shows the overlap.
        // Each command also notes when it really started and ended: the kernel's uptime, one clock for every task
        // (alpine's date has no sub-second format).
        const text = exampleText("parallel_tasks.yaml").replace(
          /command: \["echo", "Hello from (task-[abc])"\]/g,
          'command: ["sh", "-c", "cut -d\' \' -f1 /proc/uptime > {{output}}/started; echo Hello from $1; sleep 1; cut -d\' \' -f1 /proc/uptime > {{output}}/ended"]',
        );
        expect(text.match(/sleep 1;/g)).toHaveLength(3);
        const run = await runJson(home.spec("parallel-sleepy", text), { home: home.home, target });
        expect(run.code, describeRun(run)).toBe(0);
        expect(run.record.status).toBe("COMPLETED");
        const firstEnd = Math.min(...ends(run.record));
        if (target === "slurm") {
          // Slurm starts the three jobs as its cluster allows, and other test files keep it busy: what is troupe's
          // is that every group's job was submitted before any task ended.
          const submitted = submissionTimes(home.home, run.record.id);
          expect(submitted).toHaveLength(3);
          expect(Math.max(...submitted), `submitted at ${submitted.join(", ")}; first end ${firstEnd}`).toBeLessThan(firstEnd);
          return;
        }
        // Every task starts before any task ends: the three [start, end] intervals of the record share a moment,
        expect(Math.max(...starts(run.record))).toBeLessThan(firstEnd);
        // and so do the commands' own: they ran at the same time, not one after the other (which would
        // take three tasks' time, however fast or slow the machine).
        const noted = (task: string, what: string) =>
          Number(fs.readFileSync(path.join(home.home, "runs", run.record.id, "outputs", task, "0", what), "utf8")) * 1000;
        const tasks = ["task-a", "task-b", "task-c"];
        const [realStart, realEnd] = [Math.max(...tasks.map((t) => noted(t, "started"))), Math.min(...tasks.map((t) => noted(t, "ended")))];
        expect(realStart, `commands' last start ${realStart}, first end ${realEnd}`).toBeLessThan(realEnd);
      }));
  });

  onEachTarget("group_tasks.yaml, shortened copy", (target) => {
    it("starts the members' commands together: their first instructions run within 100 ms of each other", () =>
      oneAtATime(async () => {
        const home = homeOf(target);
        // The same group with 100x shorter sleeps; each member first notes the time its command really started.
        const text = exampleText("group_tasks.yaml")
          .replace(/sleep (\d)\n/g, "sleep 0.0$1\n")
          .replace(/( +)echo "Processor (\d): Starting..."/g, '$1date +%s%N > {{output}}/started\n$1echo "Processor $2: Starting..."');
        expect(text.match(/\{\{output\}\}\/started/g)).toHaveLength(3);
        const run = await runJson(home.spec("group-fast", text), { home: home.home, target });
        expect(run.code, describeRun(run)).toBe(0);
        expect(run.record.status).toBe("COMPLETED");
        const real = ["processor-1", "processor-2", "processor-3"].map(
          (name) => Number(fs.readFileSync(path.join(home.home, "runs", run.record.id, "outputs", name, "0", "started"), "utf8")) / 1e6,
        );
        expect(Math.max(...real) - Math.min(...real)).toBeLessThanOrEqual(100);
        expect(Math.max(...starts(run.record)) - Math.min(...starts(run.record))).toBeLessThanOrEqual(100);
      }));
  });
});
