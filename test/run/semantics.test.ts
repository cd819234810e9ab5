/**
 * Acceptance: OSMO's run semantics with the real CLI, real processes and
 * (with netns) real namespaces: lead rules, ignoreNonleadStatus, exit
 * actions, RESCHEDULE, data passing through {{output}} / {{input:...}},
 * exec_timeout with FAILED_UPSTREAM downstream, and a group whose members
 * all listen on the same port.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  RUN_TARGETS,
  TestHome,
  describeRun,
  ensureBuilt,
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
  type RunTarget,
} from "./helpers.js";
import {
  CLUSTER_LOCK_WAIT_MS,
  holdCluster,
  leftoverJobs,
  skipReason,
  SLURM,
  slurmHomeParent,
  targetTitle,
  warnIfSkipped,
} from "./slurm-target.js";

warnIfSkipped("test/run/semantics.test.ts");
let localHome: TestHome;
/** On the cluster, troupe's home is on its shared directory: every node sees the tasks' outputs and logs there. */
let slurmHome: TestHome | undefined;
const homeOf = (target: RunTarget): TestHome => (target === "slurm" ? slurmHome! : localHome);
const sleepers = sleepMarkers(1);
const markedSleep = (seconds: number): string => sleepers.sleep(seconds);

beforeAll(async () => {
  await ensureBuilt();
  localHome = new TestHome();
  if (SLURM.cluster) slurmHome = new TestHome(slurmHomeParent());
}, 200_000);

afterEach(() => {
  killStartedRuns();
  // A failed test must not leave its sleepers behind (the assertions say whether troupe did).
  sleepers.killAll();
});

afterAll(async () => {
  localHome?.remove();
  if (slurmHome) {
    // Every run's job is gone with it (what a failed test left is cancelled here, and fails the file).
    const left = await leftoverJobs(slurmHome.home);
    slurmHome.remove();
    expect(left, "jobs left in Slurm's queue").toEqual([]);
  }
}, 60_000);

/** From the end of task `name` (when it ended or timed out, and troupe began to stop the others) to the end of the run (every member gone). */
const stoppedAfter = (record: RunRecord, name: string): number => ms(record.end_time) - ms(taskOf(record, name).end_time);

for (const target of RUN_TARGETS)
  describe.skipIf(skipReason(target) !== undefined)(`troupe run semantics, on ${targetTitle(target)}`, () => {
    let home: TestHome;
    let release: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      home = homeOf(target);
      if (target === "slurm") release = await holdCluster();
    }, CLUSTER_LOCK_WAIT_MS);
    afterAll(() => release?.());

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
      // Each attempt has a fresh sandbox and output directory (named by its retry id), whatever the runtime.
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
      if [ "$(basename {{output}})" != 0 ]; then echo "second attempt: ok"; exit 0; fi
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
      // Inputs are read-only where the isolation allows: a mount namespace (as root, both local modes). A member on
      // Slurm runs as a plain process of its node, without one, until it gets a sandbox there (README: "inputs are
      // not read-only"): there the check is left out; everything else of the chain holds.
      const readOnlyCheck =
        target === "slurm" ? "true" : 'if touch {{input:0}}/scribble 2>/dev/null; then echo "input was writable"; exit 9; fi';
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

/**
 * Where a group's members each listen on one port: --isolation netns gives each its own address on this
 * machine; Slurm's spread: nodes (the default) puts each on a node of its own, and the test cluster has three
 * nodes: a client and two servers there.
 */
const SAME_PORT = [
  { target: "netns", servers: 4 },
  { target: "slurm", servers: 2 },
] as const;

for (const { target, servers: count } of SAME_PORT)
  describe.skipIf(skipReason(target) !== undefined)(`troupe run networking, on ${targetTitle(target)}`, () => {
    let release: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      if (target === "slurm") release = await holdCluster();
    }, CLUSTER_LOCK_WAIT_MS);
    afterAll(() => release?.());
    it(`${count} members of one group listen on the same port; the lead reaches each through {{host:}}`, async () => {
      const home = homeOf(target);
      const servers = Array.from({ length: count }, (_, i) => `s${i + 1}`);
      const port = 20_000 + Math.floor(Math.random() * 20_000);
      // On Slurm {{host:X}} is X's node's address, which no name of troupe's stands for on the nodes.
      const resolves = target === "slurm" ? "" : `echo "$name resolves to $(getent hosts "$name" | cut -d' ' -f1)"`;
      const file = home.spec(
        "same-port",
        `workflow:
  name: same-port-${random()}
  groups:
  - name: cluster
    tasks:
    - name: client
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        set -e
        for s in ${servers.map((s) => `${s}={{host:${s}}}`).join(" ")}; do
          name=\${s%%=*}; address=\${s#*=}
          out=""; i=0
          # The servers may not be listening yet: ask again until one answers (at most 5 s).
          while [ -z "$out" ] && [ $i -lt 100 ]; do
            out=$(nc -N -w 2 "$address" ${port} </dev/null 2>/dev/null || true)
            [ -n "$out" ] || sleep 0.05; i=$((i+1))
          done
          echo "$name at $address: $out"
          # The member's name resolves to the same address inside the group.
          ${resolves}
        done
${servers
  .map(
    (s) => `    - name: ${s}
      image: alpine:3.18
      command: ["sh", "-c", "echo hello from ${s} | nc -N -l -p ${port}"]
`,
  )
  .join("")}`,
      );
      const run = await runJson(file, { home: home.home, target, timeoutMs: target === "slurm" ? 60_000 : 20_000 });
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.record.status).toBe("COMPLETED");
      const addresses = servers.map((s) => taskOf(run.record, s).ip);
      const clientIp = taskOf(run.record, "client").ip;
      expect(new Set([...addresses, clientIp]).size).toBe(count + 1);
      if (target === "slurm") {
        // Each on a node of its own: the members' addresses are three of the cluster's nodes'.
        const nodes = [1, 2, 3].map((n) => SLURM.cluster!.nodeAddress(n));
        for (const address of [...addresses, clientIp]) expect(nodes).toContain(address);
      } else {
        for (const address of [...addresses, clientIp]) expect(address).toMatch(/^10\.\d+\.\d+\.\d+$/);
        // One subnet for the run.
        expect(new Set([...addresses, clientIp].map((a) => a!.split(".").slice(0, 3).join("."))).size).toBe(1);
      }
      const log = home.log(run.record.id, "client");
      // {{host:s1}} is the member's DNS name (test/run/dns-names.test.ts), which resolves to its recorded address;
      // on Slurm, the address of its node.
      const expected = servers.flatMap((s, i) =>
        target === "slurm"
          ? [`${s} at ${addresses[i]}: hello from ${s}`]
          : [`${s} at ${s}.cluster.troupe.internal: hello from ${s}`, `${s} resolves to ${addresses[i]}`],
      );
      expect(log.trimEnd().split("\n")).toEqual(expected);
      for (const s of servers) expect(taskOf(run.record, s).status, s).toBe("COMPLETED");
    });
  });
