/**
 * Acceptance: OSMO's run semantics with the real CLI, real processes and
 * (with netns) real namespaces: lead rules, ignoreNonleadStatus, exit
 * actions, RESCHEDULE, data passing through {{output}} / {{input:...}},
 * exec_timeout with FAILED_UPSTREAM downstream; on every target, the Slurm
 * test cluster included. A group whose members listen on one port:
 * same-port.test.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  RUN_TARGETS,
  describeRun,
  groupOf,
  killStartedRuns,
  ms,
  processesWith,
  random,
  runJson,
  taskOf,
  waitFor,
  sleepMarkers,
  STOP_GRACE_MS,
  type RunRecord,
  type TestHome,
} from "./helpers.js";
import { skipReason, targetTitle, warnIfSkipped } from "./slurm-target.js";
import { holdClusterDuring, suiteHomes } from "./target-homes.js";

warnIfSkipped("test/run/semantics.test.ts");
const homeOf = suiteHomes();
const sleepers = sleepMarkers(1);
const markedSleep = (seconds: number): string => sleepers.sleep(seconds);

afterEach(() => {
  killStartedRuns();
  // A failed test must not leave its sleepers behind (the assertions say whether troupe did).
  sleepers.killAll();
});

/** From the end of task `name` (when it ended or timed out, and troupe began to stop the others) to the end of the run (every member gone). */
const stoppedAfter = (record: RunRecord, name: string): number => ms(record.end_time) - ms(taskOf(record, name).end_time);

for (const target of RUN_TARGETS)
  describe.skipIf(skipReason(target) !== undefined)(`troupe run semantics, on ${targetTitle(target)}`, () => {
    let home: TestHome;
    beforeAll(() => {
      home = homeOf(target);
    });
    holdClusterDuring(target);

    it("a lead that exits 1 fails its group; the sleeping non-lead is stopped at once, not after the grace", async () => {
      const sleep = markedSleep(1000);
      const file = home.spec(
        "lead-fails",
        `workflow:
  name: lead-fails-${random()}
  groups:
  - name: pair
    tasks:
    - name: boss
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "sleep 0.2; echo giving up; exit 1"]
    - name: worker
      image: alpine:3.18
      command: ["sleep", "${sleep}"]
`,
      );
      const run = await runJson(file, { home: home.home, target, timeoutMs: 15_000 });
      expect(run.code, describeRun(run)).toBe(1);
      expect(run.record.status).toBe("FAILED");
      expect(groupOf(run.record, "pair").status).toBe("FAILED");
      expect(taskOf(run.record, "boss")).toMatchObject({ status: "FAILED", exit_code: 1 });
      // Ended by SIGTERM (128 + 15), troupe's polite signal; a kill after the grace would say 137.
      expect(taskOf(run.record, "worker")).toMatchObject({ status: "FAILED", exit_code: 143 });
      // The run ends once its last member is gone: the worker went at the polite signal, not at the kill after
      // the grace (a stop that waited for it would end at least STOP_GRACE_MS after the lead), nor at its 1000 s.
      expect(stoppedAfter(run.record, "boss"), describeRun(run)).toBeLessThan(STOP_GRACE_MS);
      expect(processesWith(sleep)).toEqual([]);
      expect(home.log(run.record.id, "boss")).toBe("giving up\n");
    });

    it("ignoreNonleadStatus: false with a non-lead exiting 3 fails the group (and stops the lead)", async () => {
      const sleep = markedSleep(1000);
      const file = home.spec(
        "strict-group",
        `workflow:
  name: strict-${random()}
  groups:
  - name: strict
    ignoreNonleadStatus: false
    tasks:
    - name: lead
      lead: true
      image: alpine:3.18
      command: ["sleep", "${sleep}"]
    - name: helper
      image: alpine:3.18
      command: ["sh", "-c", "sleep 0.1; exit 3"]
`,
      );
      const run = await runJson(file, { home: home.home, target, timeoutMs: 15_000 });
      expect(run.code, describeRun(run)).toBe(1);
      expect(run.record.status).toBe("FAILED");
      expect(groupOf(run.record, "strict").status).toBe("FAILED");
      expect(taskOf(run.record, "helper")).toMatchObject({ status: "FAILED", exit_code: 3 });
      expect(taskOf(run.record, "lead")).toMatchObject({ status: "FAILED", exit_code: 143 });
      // The lead went at the polite signal, before the grace could have passed.
      expect(stoppedAfter(run.record, "helper"), describeRun(run)).toBeLessThan(STOP_GRACE_MS);
      expect(processesWith(sleep)).toEqual([]);
    });

    it("with the default ignoreNonleadStatus, a non-lead exiting 3 does not fail the group", async () => {
      const file = home.spec(
        "lenient-group",
        `workflow:
  name: lenient-${random()}
  groups:
  - name: lenient
    tasks:
    - name: lead
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "sleep 1"]
    - name: helper
      image: alpine:3.18
      command: ["sh", "-c", "exit 3"]
`,
      );
      const run = await runJson(file, { home: home.home, target });
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.record.status).toBe("COMPLETED");
      expect(groupOf(run.record, "lenient").status).toBe("COMPLETED");
      expect(taskOf(run.record, "lead")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      expect(taskOf(run.record, "helper")).toMatchObject({ status: "FAILED", exit_code: 3 });
    });

    it("exitActions {COMPLETE: 15} with exit 15 completes", async () => {
      const file = home.spec(
        "exit-15",
        `workflow:
  name: exit15-${random()}
  tasks:
  - name: warns
    image: alpine:3.18
    command: ["sh", "-c", "echo finished with warnings; exit 15"]
    exitActions:
      COMPLETE: 15
`,
      );
      const run = await runJson(file, { home: home.home, target });
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.record.status).toBe("COMPLETED");
      expect(taskOf(run.record, "warns")).toMatchObject({ status: "COMPLETED", exit_code: 15, retry_id: 0 });
      expect(home.log(run.record.id, "warns")).toBe("finished with warnings\n");
    });

    it("RESCHEDULE on exit 1 reruns the task, which completes on its second attempt (--max-retries 1)", async () => {
      // Each attempt has a fresh sandbox and output directory, whatever the runtime; TROUPE_RETRY_ID says which it is.
      const file = home.spec(
        "reschedule",
        `workflow:
  name: resched-${random()}
  tasks:
  - name: flaky
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      if [ "$TROUPE_RETRY_ID" != 0 ]; then echo "second attempt: ok"; exit 0; fi
      echo "first attempt: failing"
      exit 1
    exitActions:
      RESCHEDULE: "1"
`,
      );
      const run = await runJson(file, { home: home.home, target, extra: ["--max-retries", "1"] });
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.record.status).toBe("COMPLETED");
      expect(taskOf(run.record, "flaky")).toMatchObject({ status: "COMPLETED", exit_code: 0, retry_id: 1 });
      expect(home.log(run.record.id, "flaky", 0)).toBe("first attempt: failing\n");
      expect(home.log(run.record.id, "flaky", 1)).toBe("second attempt: ok\n");
      expect(fs.existsSync(home.logPath(run.record.id, "flaky", 2))).toBe(false);
    });

    it("RESCHEDULE with no retries left (--max-retries 0) fails the task", async () => {
      const file = home.spec(
        "reschedule-none",
        `workflow:
  name: resched0-${random()}
  tasks:
  - name: flaky
    image: alpine:3.18
    command: ["sh", "-c", "exit 1"]
    exitActions:
      RESCHEDULE: "1"
`,
      );
      const run = await runJson(file, { home: home.home, target, extra: ["--max-retries", "0"] });
      expect(run.code, describeRun(run)).toBe(1);
      expect(taskOf(run.record, "flaky")).toMatchObject({ status: "FAILED", exit_code: 1, retry_id: 0 });
    });

    it("a three-step chain passes files through {{output}} -> {{input:0}} / {{input:1}} / {{input:NAME}}", async () => {
      // Inputs are read-only on every target (a mount namespace: the host's sandboxes, containers, Slurm's node sandbox).
      const readOnlyCheck = 'if touch {{input:0}}/scribble 2>/dev/null; then echo "input was writable"; exit 9; fi';
      const file = home.spec(
        "chain",
        `workflow:
  name: chain-${random()}
  tasks:
  - name: produce
    image: alpine:3.18
    command: ["sh", "-c", "echo raw-data > {{output}}/a.txt"]
  - name: transform
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      set -e
      tr a-z A-Z < {{input:0}}/a.txt > {{output}}/b.txt
      ${readOnlyCheck}
    inputs:
    - task: produce
  - name: report
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      set -e
      echo "first: $(cat {{input:0}}/a.txt)"
      echo "second: $(cat {{input:1}}/b.txt)"
      echo "by name: $(cat {{input:produce}}/a.txt) $(cat {{input:transform}}/b.txt)"
      cat {{input:0}}/a.txt {{input:transform}}/b.txt > {{output}}/report.txt
    inputs:
    - task: produce
    - task: transform
`,
      );
      const run = await runJson(file, { home: home.home, target });
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.record.status).toBe("COMPLETED");
      for (const name of ["produce", "transform", "report"]) expect(taskOf(run.record, name).status, name).toBe("COMPLETED");
      // Downstream groups start only after their upstream ones end.
      expect(ms(taskOf(run.record, "transform").start_time)).toBeGreaterThanOrEqual(ms(taskOf(run.record, "produce").end_time));
      expect(ms(taskOf(run.record, "report").start_time)).toBeGreaterThanOrEqual(ms(taskOf(run.record, "transform").end_time));
      expect(home.log(run.record.id, "report")).toBe("first: raw-data\nsecond: RAW-DATA\nby name: raw-data RAW-DATA\n");
      const outputs = path.join(home.home, "runs", run.record.id, "outputs");
      expect(fs.readFileSync(path.join(outputs, "report", "0", "report.txt"), "utf8")).toBe("raw-data\nRAW-DATA\n");
      expect(fs.existsSync(path.join(outputs, "produce", "0", "scribble"))).toBe(false);
    });

    it("a task sees its data where its runtime shows it: OSMO's /osmo/data paths in a container, the directories' own paths elsewhere; and who it is", async () => {
      const osmo = target === "container";
      // Scripts that hard-code OSMO's paths (as its cookbook's do) work where they exist.
      const hardCoded = osmo
        ? 'echo "hard-coded: $(cat /osmo/data/input/0/a.txt) $(cat /osmo/data/input/produce/a.txt)"; echo kept > /osmo/data/output/hard.txt'
        : "true";
      const file = home.spec(
        "paths",
        `workflow:
  name: paths-${random()}
  tasks:
  - name: produce
    image: alpine:3.18
    command: ["sh", "-c"]
    args: ["echo data > {{output}}/a.txt; echo output: {{output}}"]
  - name: consume
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      set -e
      echo "input: {{input:0}} by name: {{input:produce}}"
      echo "$TROUPE_TASK $TROUPE_RETRY_ID $TROUPE_WORKFLOW_ID"
      ${hardCoded}
    inputs:
    - task: produce
`,
      );
      const run = await runJson(file, { home: home.home, target });
      expect(run.code, describeRun(run)).toBe(0);
      const outputs = path.join(home.home, "runs", run.record.id, "outputs");
      const produced = osmo ? "/osmo/data/output" : path.join(outputs, "produce", "0");
      expect(home.log(run.record.id, "produce")).toBe(`output: ${produced}\n`);
      const input = osmo ? "/osmo/data/input/0" : produced;
      const lines = [`input: ${input} by name: ${input}`, `consume 0 ${run.record.id}`];
      if (osmo) lines.push("hard-coded: data data");
      expect(home.log(run.record.id, "consume")).toBe(`${lines.join("\n")}\n`);
      if (osmo) expect(fs.readFileSync(path.join(outputs, "consume", "0", "hard.txt"), "utf8")).toBe("kept\n");
    });

    it("exec_timeout 2s stops a `sleep 60` as FAILED_EXEC_TIMEOUT, fails its downstream as FAILED_UPSTREAM; an independent task completes", async () => {
      const sleep = markedSleep(60);
      const file = home.spec(
        "timeout",
        `workflow:
  name: timeout-${random()}
  timeout:
    exec_timeout: 2s
  tasks:
  - name: slow
    image: alpine:3.18
    command: ["sleep", "${sleep}"]
  - name: after-slow
    image: alpine:3.18
    command: ["echo", "never runs"]
    inputs:
    - task: slow
  - name: quick
    image: alpine:3.18
    command: ["echo", "done in time"]
`,
      );
      const run = await runJson(file, { home: home.home, target, timeoutMs: 20_000 });
      expect(run.code, describeRun(run)).toBe(1);
      expect(run.record.status).toBe("FAILED_EXEC_TIMEOUT");
      expect(groupOf(run.record, "slow-group").status).toBe("FAILED_EXEC_TIMEOUT");
      expect(taskOf(run.record, "slow")).toMatchObject({ status: "FAILED_EXEC_TIMEOUT", exit_code: 143 });
      expect(groupOf(run.record, "after-slow-group").status).toBe("FAILED_UPSTREAM");
      expect(taskOf(run.record, "after-slow")).toMatchObject({ status: "FAILED_UPSTREAM", exit_code: 3000 });
      expect(taskOf(run.record, "quick")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      expect(home.log(run.record.id, "quick")).toBe("done in time\n");
      expect(fs.existsSync(home.logPath(run.record.id, "after-slow"))).toBe(false);
      const slow = taskOf(run.record, "slow");
      const ran = ms(slow.end_time) - ms(slow.start_time);
      // The timeout fired after at least exec_timeout (the record's times are whole milliseconds, the timer's
      // start a moment after the recorded start), and on its own time, not a 60 s sleep's nor a late poll's.
      expect(ran).toBeGreaterThanOrEqual(1_950);
      expect(ran).toBeLessThan(2 * 2_000);
      // The sleep went at the polite signal: the run ended before the grace could have passed.
      expect(stoppedAfter(run.record, "slow"), describeRun(run)).toBeLessThan(STOP_GRACE_MS);
      expect(
        await waitFor(
          () => processesWith(sleep),
          (p) => p.length === 0,
          10_000,
        ),
      ).toEqual([]);
    });
  });
