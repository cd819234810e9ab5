/**
 * `troupe run --runtime slurm` on the real test cluster (scripts/slurm/up.sh: three nodes, each its own
 * network namespace, address and host name): a group of three lands on three nodes and its members reach
 * each other through {{host:X}}; exit codes are exact; Ctrl-C cancels the run's job and leaves nothing in
 * squeue; a group Slurm keeps pending ends FAILED_QUEUE_TIMEOUT with its job cancelled; a group that can
 * never fit the cluster is refused at plan time with the numbers. Skipped only when no cluster can start.
 */
import * as fs from "node:fs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ensureBuilt, killStartedRuns, processesWith, random, runJson, taskOf, TestHome, troupe } from "../run/helpers.js";
import { attemptCluster, lockCluster, pollFor, runScript, slurm, UP_SCRIPT, type SlurmCluster } from "./slurm-cluster.js";

const readLog = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/run.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`troupe run --runtime slurm (${attempt.reason ?? "the test cluster"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  let home: TestHome;
  const env = () => ({ SLURM_CONF: cluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster.shared, TROUPE_RUNTIME: undefined });
  const slurmArgs = ["--runtime", "slurm", "--listen-address", cluster?.loginAddress ?? ""];
  /** The jobs squeue shows (pending or running; `all`: finished ones too) whose name ends with `-GROUP`. */
  const jobsOf = async (group: string, all = false) =>
    (await slurm(cluster, "squeue", ["-h", ...(all ? ["-t", "all"] : []), "-o", "%i|%j|%T|%r"]))
      .split("\n")
      .filter((line) => line.split("|")[1]?.endsWith(`-${group}`));
  /** The steps squeue shows of job `job` (its members' step, and the batch script's while it runs). */
  const stepsOf = async (job: string) =>
    (await slurm(cluster, "squeue", ["-h", "-s", "-o", "%i|%j"])).split("\n").filter((line) => line.startsWith(`${job}.`));
  /** Until squeue shows neither job `job` nor a step of it. */
  const jobAndStepsGone = (job: string) =>
    pollFor(`job ${job} and its steps to leave squeue`, 20_000, async () =>
      (await slurm(cluster, "squeue", ["-h", "-j", job, "-o", "%i"]).catch(() => "")).trim() === "" && (await stepsOf(job)).length === 0
        ? true
        : undefined,
    );

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
  }, 200_000);
  /** Tests that disturb the cluster (a slurmd killed, a node drained) hold the test files' lock exclusive; the others shared. */
  const DISTURBING = new Set<string>();
  const disturbing = (name: string) => (DISTURBING.add(name), name);
  let release: (() => Promise<void>) | undefined;
  beforeEach(async (context) => {
    release = await lockCluster(cluster, DISTURBING.has(context.task.name) ? "exclusive" : "shared");
  }, 300_000);
  afterEach(async () => {
    await release?.();
    release = undefined;
  });
  afterAll(async () => {
    killStartedRuns();
    await slurm(cluster, "scontrol", ["update", "nodename=n3", "state=resume"]).catch(() => undefined);
    home?.remove();
  });

  it("a group of three lands on three nodes, with three addresses, and its client reaches its server by {{host:server}}", async () => {
    const group = `trio-${random(3)}`;
    const file = home.spec(
      "trio",
      `workflow:
  name: slurm-trio
  groups:
  - name: ${group}
    tasks:
    - name: server
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        echo "node=$(hostname) address={{host:server}}"
        echo hello | nc -w 30 -l -p 24831
        echo "server done"
    - name: client
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        echo "node=$(hostname) address={{host:client}}"
        for i in $(seq 1 100); do got=$(nc -w 3 {{host:server}} 24831 2>/dev/null) && [ -n "$got" ] && break; sleep 0.2; done
        echo "received=$got"
        [ "$got" = hello ]
    - name: watcher
      image: alpine:3.18
      command: ["sh", "-c", "echo node=$(hostname) address={{host:watcher}} sees {{host:server}} {{host:client}}"]
`,
    );
    const result = await runJson(file, { home: home.home, env: env(), extra: slurmArgs, timeoutMs: 90_000 });
    expect(result.record.status, result.stderr).toBe("COMPLETED");
    expect(result.code).toBe(0);
    const tasks = ["server", "client", "watcher"].map((name) => taskOf(result.record, name));
    const ips = tasks.map((t) => t.ip);
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) expect([1, 2, 3].map((i) => cluster.nodeAddress(i))).toContain(ip);
    const logs = ["server", "client", "watcher"].map((name) => home.log(result.record.id, name));
    const nodes = logs.map((log) => /node=(\S+)/.exec(log)?.[1]);
    expect(new Set(nodes).size).toBe(3);
    expect(nodes.every((n) => /^n[123]$/.test(n ?? ""))).toBe(true);
    // Each member's own address is the one its siblings were given.
    logs.forEach((log, i) => expect(log).toContain(`address=${ips[i]}`));
    expect(logs[1]).toContain("received=hello");
    expect(logs[0]).toContain("server done");
    // The job leaves squeue a moment after its last member (COMPLETING while Slurm cleans up its nodes).
    expect(await pollFor("the job to leave squeue", 20_000, async () => ((await jobsOf(group)).length === 0 ? true : undefined))).toBe(
      true,
    );
  }, 120_000);

  it("reports a task's exit code exactly, and the run fails with it", async () => {
    const file = home.spec(
      "seven",
      `workflow:
  name: slurm-seven
  groups:
  - name: seven-${random(3)}
    tasks:
    - name: seven
      image: alpine:3.18
      command: ["sh", "-c", "echo about to fail; exit 7"]
`,
    );
    const result = await runJson(file, { home: home.home, env: env(), extra: slurmArgs, timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    const task = taskOf(result.record, "seven");
    expect(task.status).toBe("FAILED");
    expect(task.exit_code).toBe(7);
    expect(home.log(result.record.id, "seven")).toBe("about to fail\n");
    // The run's files in the shared directory: moved aside once it was over, then removed in the background.
    const pools = fs
      .readdirSync(cluster.shared)
      .filter((entry) => entry.startsWith("troupe-"))
      .map((entry) => `${cluster.shared}/${entry}`);
    for (const pool of pools) expect(fs.existsSync(`${pool}/runs/${result.record.id}`)).toBe(false);
    const aside = () => pools.flatMap((pool) => (fs.existsSync(`${pool}/trash`) ? fs.readdirSync(`${pool}/trash`) : []));
    await pollFor("the run's files to be removed", 20_000, async () =>
      aside().some((e) => e.startsWith(`${result.record.id}.`)) ? undefined : true,
    );
  }, 90_000);

  it("a run's group is an interactive allocation (salloc: placed at once); with --batch-jobs a batch job (sbatch), as a server's", async () => {
    const kinds: Record<string, string> = {};
    for (const batch of [false, true]) {
      const group = `kind-${random(3)}`;
      const file = home.spec(
        `kind-${batch}`,
        `workflow:
  name: slurm-kind
  groups:
  - name: ${group}
    tasks:
    - {name: only, image: alpine:3.18, command: ["sh", "-c", "echo ran"]}
`,
      );
      const extra = [...slurmArgs, ...(batch ? ["--batch-jobs"] : [])];
      const result = await runJson(file, { home: home.home, env: env(), extra, timeoutMs: 60_000 });
      expect(result.code, result.stderr).toBe(0);
      expect(home.log(result.record.id, "only")).toBe("ran\n");
      const job = (await jobsOf(group, true))[0]!.split("|")[0]!;
      // scontrol's BatchFlag: 1 for a batch job, 0 for an allocation (salloc's, srun's).
      kinds[String(batch)] = /BatchFlag=(\d)/.exec(await slurm(cluster, "scontrol", ["-o", "show", "job", job]))![1]!;
    }
    expect(kinds).toEqual({ false: "0", true: "1" });
  }, 150_000);

  it("hostNetwork: true runs where the pool allows it (every member is on its node's network anyway), refused where not", async () => {
    const file = home.spec(
      "hostnet",
      `workflow:
  name: slurm-hostnet
  groups:
  - name: hostnet-${random(3)}
    tasks:
    - name: onhost
      image: alpine:3.18
      hostNetwork: true
      command: ["sh", "-c", "echo on {{host:onhost}}"]
`,
    );
    const refused = await troupe(["run", file, ...slurmArgs], { home: home.home, env: env(), timeoutMs: 60_000 });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("asks for hostNetwork: true, which the pool of troupe run does not allow");
    const result = await runJson(file, { home: home.home, env: env(), extra: [...slurmArgs, "--allow-host-network"], timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(0);
    const task = taskOf(result.record, "onhost");
    expect(task.ip).toMatch(/^10\.250\.0\.1\d$/);
    expect(home.log(result.record.id, "onhost")).toBe(`on ${task.ip}\n`);
  }, 120_000);

  it("Ctrl-C cancels the run: its job is cancelled, its commands are gone, squeue shows nothing of it", async () => {
    const group = `cancel-${random(3)}`;
    const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
    const file = home.spec(
      "cancel",
      `workflow:
  name: slurm-cancel
  groups:
  - name: ${group}
    tasks:
    - name: sleeper
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "echo begun; while :; do sleep ${marker}; done"]
    - name: other
      image: alpine:3.18
      command: ["sh", "-c", "while :; do sleep ${marker}; done"]
`,
    );
    let child: import("node:child_process").ChildProcess | undefined;
    const running = troupe(["run", file, "--output", "json", ...slurmArgs], {
      home: home.home,
      env: env(),
      timeoutMs: 90_000,
      onSpawn: (c) => (child = c),
    });
    await pollFor("both members running", 60_000, async () => (processesWith(marker).length >= 2 ? true : undefined));
    const jobs = await jobsOf(group);
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!.split("|")[0]!;
    expect(await stepsOf(job)).not.toEqual([]);
    child!.kill("SIGINT");
    const result = await running;
    expect(result.code).toBe(130);
    expect(JSON.parse(result.stdout).status).toBe("FAILED_CANCELED");
    expect(await jobAndStepsGone(job)).toBe(true);
    expect(await pollFor("the commands to end", 20_000, async () => (processesWith(marker).length === 0 ? true : undefined))).toBe(true);
  }, 120_000);

  it("troupe killed (SIGKILL) mid-run: its members' helpers end the commands, the job ends, squeue shows nothing of it", async () => {
    const group = `killed-${random(3)}`;
    const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
    const file = home.spec(
      "killed",
      `workflow:
  name: slurm-killed
  groups:
  - name: ${group}
    tasks:
    - name: sleeper
      image: alpine:3.18
      command: ["sh", "-c", "while :; do sleep ${marker}; done"]
`,
    );
    let child: import("node:child_process").ChildProcess | undefined;
    const running = troupe(["run", file, ...slurmArgs], { home: home.home, env: env(), timeoutMs: 90_000, onSpawn: (c) => (child = c) });
    await pollFor("the member running", 60_000, async () => (processesWith(marker).length >= 1 ? true : undefined));
    const job = (await jobsOf(group))[0]!.split("|")[0]!;
    child!.kill("SIGKILL");
    expect((await running).signal).toBe("SIGKILL");
    // A run that does not keep its tasks: its helpers wait 15 s for troupe to come back, then end their commands.
    expect(await pollFor("the commands to end", 45_000, async () => (processesWith(marker).length === 0 ? true : undefined), 500)).toBe(
      true,
    );
    expect(await jobAndStepsGone(job)).toBe(true);
  }, 120_000);

  it("troupe cancel from another terminal: the run ends FAILED_CANCELED, its commands are gone, squeue shows no job or step of it", async () => {
    const group = `tcancel-${random(3)}`;
    const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
    const file = home.spec(
      "tcancel",
      `workflow:
  name: slurm-tcancel
  groups:
  - name: ${group}
    tasks:
    - name: sleeper
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "while :; do sleep ${marker}; done"]
    - name: other
      image: alpine:3.18
      command: ["sh", "-c", "while :; do sleep ${marker}; done"]
`,
    );
    let runId: string | undefined;
    const running = troupe(["run", file, "--output", "json", ...slurmArgs], {
      home: home.home,
      env: env(),
      timeoutMs: 90_000,
      onSpawn: (c) => c.stderr?.on("data", (d: Buffer) => (runId ??= /troupe: run (\S+):/.exec(d.toString())?.[1])),
    });
    await pollFor("both members running", 60_000, async () => (processesWith(marker).length >= 2 ? true : undefined));
    const job = (await jobsOf(group))[0]!.split("|")[0]!;
    expect(await stepsOf(job)).not.toEqual([]);
    const cancel = await troupe(["cancel", runId!], { home: home.home, env: env(), timeoutMs: 60_000 });
    expect(cancel.code, cancel.stderr).toBe(0);
    const result = await running;
    expect(result.code).toBe(130);
    expect(JSON.parse(result.stdout).status).toBe("FAILED_CANCELED");
    expect(await jobAndStepsGone(job)).toBe(true);
    expect(await pollFor("the commands to end", 20_000, async () => (processesWith(marker).length === 0 ? true : undefined))).toBe(true);
  }, 120_000);

  it(
    disturbing(
      "a node whose slurmd dies mid-run: its member ends FAILED_BACKEND_ERROR once Slurm says NODE_FAIL; up.sh brings the node back",
    ),
    async () => {
      const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
      const file = home.spec(
        "nodefail",
        `workflow:
  name: slurm-nodefail
  groups:
  - name: nodefail-${random(3)}
    tasks:
    - name: victim
      image: alpine:3.18
      command: ["sh", "-c", "echo node=$(hostname); while :; do sleep ${marker}; done"]
`,
      );
      const running = runJson(file, { home: home.home, env: env(), extra: slurmArgs, timeoutMs: 150_000 });
      try {
        await pollFor("the member running", 60_000, async () => (processesWith(marker).length >= 1 ? true : undefined));
        const runId = await pollFor("the run's directory", 10_000, async () =>
          fs.readdirSync(`${home.home}/runs`).find((r) => r.startsWith("slurm-nodefail-")),
        );
        const node = await pollFor(
          "the member's node in its log",
          10_000,
          async () => /node=(n\d)/.exec(readLog(home.logPath(runId, "victim")))?.[1],
        );
        process.kill(Number(fs.readFileSync(`${cluster.dir}/nodes/${node}/slurmd.pid`, "utf8")), "SIGKILL");
        const result = await running;
        const task = taskOf(result.record, "victim");
        expect(task.status, result.stderr).toBe("FAILED_BACKEND_ERROR");
        expect(task.reason).toContain("NODE_FAIL");
      } finally {
        const repaired = await runScript(cluster, UP_SCRIPT);
        expect(repaired.code, repaired.stderr).toBe(0);
      }
      expect(
        await pollFor("the orphaned command to end", 30_000, async () => (processesWith(marker).length === 0 ? true : undefined), 500),
      ).toBe(true);
    },
    180_000,
  );

  it(
    disturbing("a group Slurm keeps pending past its queue_timeout ends FAILED_QUEUE_TIMEOUT, its job cancelled"),
    async () => {
      const group = `pending-${random(3)}`;
      // Three members on three distinct nodes, one of which is drained: Slurm keeps the job pending.
      await slurm(cluster, "scontrol", ["update", "nodename=n3", "state=drain", "reason=troupe-queue-timeout-test"]);
      try {
        const file = home.spec(
          "pending",
          `workflow:
  name: slurm-pending
  timeout:
    queue_timeout: 4s
  groups:
  - name: ${group}
    tasks:
    - {name: a, lead: true, image: alpine:3.18, command: ["true"]}
    - {name: b, image: alpine:3.18, command: ["true"]}
    - {name: c, image: alpine:3.18, command: ["true"]}
`,
        );
        const result = await runJson(file, { home: home.home, env: env(), extra: slurmArgs, timeoutMs: 60_000 });
        expect(result.record.groups[0]!.status, result.stderr).toBe("FAILED_QUEUE_TIMEOUT");
        expect(result.code).toBe(1);
      } finally {
        await slurm(cluster, "scontrol", ["update", "nodename=n3", "state=resume"]);
      }
      expect(await jobsOf(group)).toEqual([]);
      const ended = await jobsOf(group, true);
      // Slurm may have forgotten it already; if not, it was cancelled, never run.
      for (const line of ended) expect(line.split("|")[2]).toBe("CANCELLED");
    },
    90_000,
  );

  it("a group of four on three nodes: --spread nodes is refused at plan time saying why (troupe plan and run, exit 2); --spread pack runs it, members sharing a node", async () => {
    const file = home.spec(
      "four",
      `workflow:
  name: slurm-four
  groups:
  - name: four-${random(3)}
    tasks:
    - {name: a, lead: true, image: alpine:3.18, command: ["sh", "-c", "echo node=$(hostname); sleep 2"]}
    - {name: b, image: alpine:3.18, command: ["sh", "-c", "echo node=$(hostname)"]}
    - {name: c, image: alpine:3.18, command: ["sh", "-c", "echo node=$(hostname)"]}
    - {name: d, image: alpine:3.18, command: ["sh", "-c", "echo node=$(hostname)"]}
`,
    );
    const refusal = "spread: nodes puts each of the 4 members on a node of its own, and the cluster has 3 nodes";
    const planned = await troupe(["plan", file, ...slurmArgs], { home: home.home, env: env() });
    expect(planned.code, planned.stderr).toBe(2);
    expect(planned.stderr).toContain(`error E_UNPLACEABLE: group four-`);
    expect(planned.stderr).toContain(refusal);
    expect(planned.stdout).toMatch(/placement: four-\w+: one job, 4 tasks on 4 distinct nodes, 1 CPU each \(never: /);
    const spread = await troupe(["run", file, ...slurmArgs], { home: home.home, env: env(), timeoutMs: 60_000 });
    expect(spread.code).toBe(2);
    expect(spread.stderr).toContain(refusal);
    const packedPlan = await troupe(["plan", file, ...slurmArgs, "--spread", "pack"], { home: home.home, env: env() });
    expect(packedPlan.code, packedPlan.stderr).toBe(0);
    expect(packedPlan.stdout).toMatch(/placement: four-\w+: one job, 4 tasks of 1 CPU, packed on nodes as Slurm places them/);
    const packed = await runJson(file, { home: home.home, env: env(), extra: [...slurmArgs, "--spread", "pack"], timeoutMs: 60_000 });
    expect(packed.record.status, packed.stderr).toBe("COMPLETED");
    const nodes = ["a", "b", "c", "d"].map((t) => /node=(\S+)/.exec(home.log(packed.record.id, t))?.[1]);
    expect(nodes.every((n) => /^n[123]$/.test(n ?? ""))).toBe(true);
    expect(new Set(nodes).size).toBeLessThan(4);
  }, 150_000);

  it("members that ask differently are one heterogeneous job: each runs its own command; a GPU is Slurm's to give", async () => {
    const file = home.spec(
      "het",
      `workflow:
  name: slurm-het
  resources:
    two: {cpu: 2}
    gpu: {cpu: 1, gpu: 1}
  groups:
  - name: het-${random(3)}
    tasks:
    - {name: wide, lead: true, resource: two, image: alpine:3.18, command: ["sh", "-c", "echo wide on $(hostname); sleep 2"]}
    - {name: gpu, resource: gpu, image: alpine:3.18, command: ["sh", "-c", "echo gpu on $(hostname) devices=$CUDA_VISIBLE_DEVICES"]}
`,
    );
    const result = await runJson(file, { home: home.home, env: env(), extra: slurmArgs, timeoutMs: 90_000 });
    expect(result.record.status, result.stderr).toBe("COMPLETED");
    expect(home.log(result.record.id, "wide")).toMatch(/^wide on n[123]\n$/);
    expect(home.log(result.record.id, "gpu")).toMatch(/^gpu on n[123] devices=\d\n$/);
  }, 120_000);

  it("a partition the cluster does not have is refused before anything runs (exit 2, E_SLURM_UNAVAILABLE)", async () => {
    const file = home.spec(
      "tiny",
      'workflow:\n  name: tiny\n  groups:\n  - name: g\n    tasks:\n    - {name: t, image: alpine:3.18, command: ["true"]}\n',
    );
    const result = await troupe(["run", file, ...slurmArgs, "--partition", "no-such-partition"], {
      home: home.home,
      env: env(),
      timeoutMs: 30_000,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("E_SLURM_UNAVAILABLE");
    expect(result.stderr).toContain("partition no-such-partition has no nodes");
  }, 60_000);

  it("a group that can never fit the cluster is refused at plan time with the cluster's numbers (exit 2)", async () => {
    const file = home.spec(
      "huge",
      `workflow:
  name: slurm-huge
  resources:
    default: {cpu: 100}
  groups:
  - name: huge
    tasks:
    - {name: big, image: alpine:3.18, command: ["true"]}
`,
    );
    const result = await troupe(["run", file, ...slurmArgs], { home: home.home, env: env(), timeoutMs: 30_000 });
    expect(result.code).toBe(2);
    const nodes = Number(cluster.env.TROUPE_SLURM_NODES ?? 3);
    const cpus = Number(cluster.env.TROUPE_SLURM_CPUS ?? 4);
    expect(result.stderr).toContain(`E_UNSCHEDULABLE: group huge needs cpu 100`);
    expect(result.stderr).toContain(`the pool has cpu ${nodes * cpus}`);
  }, 60_000);
});
