/**
 * The real Slurm test cluster (scripts/slurm/up.sh: slurmctld and three slurmd, each node in its own network
 * namespace) does what troupe's Slurm runtime will need: gang allocations over distinct nodes and addresses,
 * TCP between nodes and back to the login node, heterogeneous jobs, cancel, pending reasons, exit codes
 * without accounting, and a node whose slurmd dies. Times measured go to stdout (docs/slurm-notes.md).
 */
import { spawn } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  attemptCluster,
  DOWN_SCRIPT,
  lockCluster,
  pollFor,
  runScript,
  showJob,
  slurm,
  UP_SCRIPT,
  type SlurmCluster,
} from "./slurm-cluster.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/cluster.test.ts skipped: ${attempt.reason}`);
const NODE = process.execPath;
// Programs the steps run. Every node shares this machine's mount namespace, so they are at the same path there.
const FIXTURES = fileURLToPath(new URL("./fixtures", import.meta.url));
const timings: Record<string, string> = {};
const ms = (since: bigint) => Number((process.hrtime.bigint() - since) / 1_000_000n);

describe.skipIf(!attempt.cluster)(`a real Slurm cluster (${attempt.reason ?? "scripts/slurm/up.sh"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  const jobs: string[] = [];
  const run = (command: string, args: readonly string[], timeoutMs?: number) => slurm(cluster, command, args, timeoutMs);
  /** A fresh directory on the cluster's shared file system. */
  const sharedDir = (name: string) => mkdtempSync(`${cluster.shared}/${name}-`);
  /** Writes a batch script into DIR and submits it (`sbatch --parsable`); remembers the job for cleanup. */
  async function submit(dir: string, body: string, options: readonly string[]): Promise<string> {
    writeFileSync(`${dir}/job.sh`, `#!/bin/bash\nset -u\nexport D=${dir}\n${body}\n`);
    const id = (await run("sbatch", ["--parsable", `--chdir=${dir}`, "-o", `${dir}/job.out`, ...options, `${dir}/job.sh`])).trim();
    expect(id).toMatch(/^\d+$/);
    jobs.push(id);
    return id;
  }
  const jobState = async (id: string) => (await run("squeue", ["-h", "-t", "all", "-j", id, "-o", "%T"])).trim();
  const untilState = (id: string, wanted: RegExp, within: number) =>
    pollFor(`job ${id} to be ${wanted.source}`, within, async () => {
      const state = await jobState(id);
      return wanted.test(state) ? state : undefined;
    });
  // sinfo -N lists a node once per partition (main, and urgent for preemption): the default partition's line.
  const nodeState = async (node: string) => (await run("sinfo", ["-h", "-N", "-p", "main", "-n", node, "-o", "%t"])).trim();
  /** Whether a process is gone (a zombie waiting for this machine's slow PID 1 counts as gone). */
  const gone = (pid: number) => {
    try {
      return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return true;
    }
  };

  /**
   * Tests that disturb the cluster (a node drained, every node held, a slurmd killed) hold the test files' lock
   * exclusive; the others shared. Released after the test's jobs are cancelled (hooks after a test run last first).
   */
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
  afterEach(async () => {
    if (jobs.length > 0) await run("scancel", jobs.splice(0)).catch(() => undefined);
  });
  afterAll(async () => {
    console.log(
      `Slurm test cluster timings:\n${Object.entries(timings)
        .map(([k, v]) => `  ${k}: ${v}`)
        .join("\n")}`,
    );
    if (cluster.startedHere) await run("bash", [DOWN_SCRIPT]);
  });

  it("up.sh on a running cluster changes nothing; other settings and another state directory are refused", async () => {
    const daemons = () =>
      ["munge/munged.pid", "ctld/slurmctld.pid", ...[1, 2, 3].map((i) => `nodes/n${i}/slurmd.pid`)].map((f) =>
        readFileSync(`${cluster.dir}/${f}`, "utf8"),
      );
    const before = daemons();
    const again = await runScript(cluster, UP_SCRIPT);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`export SLURM_CONF=${cluster.env.SLURM_CONF}\n`);
    expect(again.stderr).not.toMatch(/starting|creating/);
    expect(daemons()).toEqual(before);

    const other = await runScript(cluster, UP_SCRIPT, { TROUPE_SLURM_CPUS: String(Number(cluster.env.TROUPE_SLURM_CPUS) + 1) });
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/runs with other settings[\s\S]*CPUs=/);
    const elsewhere = { TROUPE_SLURM_DIR: `${cluster.dir}-elsewhere` };
    for (const script of [UP_SCRIPT, DOWN_SCRIPT]) {
      const refused = await runScript(cluster, script, elsewhere);
      expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining(`a test cluster with its state in ${cluster.dir} is up`)]);
    }
    const bad = await runScript(cluster, UP_SCRIPT, { TROUPE_SLURM_NODES: "12" });
    expect([bad.code, bad.stderr.trim()]).toEqual([2, "TROUPE_SLURM_NODES must be 1 to 9, not '12'"]);
    expect(daemons()).toEqual(before);
    expect(existsSync(`${cluster.dir}-elsewhere`)).toBe(false);
  });

  it("sbatch and salloc of three nodes, one task each: three distinct nodes and addresses", async () => {
    const dir = sharedDir("three");
    const started = process.hrtime.bigint();
    const id = await submit(dir, "srun bash -c 'echo $(hostname) $(hostname -I)'", ["-N3", "--ntasks-per-node=1"]);
    await untilState(id, /^COMPLETED$/, 30_000);
    timings["sbatch -N3 to COMPLETED (polled)"] = `${ms(started)} ms`;
    const lines = readFileSync(`${dir}/job.out`, "utf8").trim().split("\n").sort();
    const expected = [1, 2, 3].map((i) => `n${i} ${cluster.nodeAddress(i)}`);
    expect(lines).toEqual(expected);

    const allocated = process.hrtime.bigint();
    const out = await run("salloc", ["-N3", "--ntasks-per-node=1", "srun", "bash", "-c", "echo $(hostname) $(hostname -I)"]);
    timings["salloc -N3 + one srun step, end to end"] = `${ms(allocated)} ms`;
    expect(out.trim().split("\n").sort()).toEqual(expected);
  });

  it("capacity per node from sinfo (cpus, memory, fake GPUs as gres); a step given a GPU sees CUDA_VISIBLE_DEVICES", async () => {
    const lines = (await run("sinfo", ["-N", "-h", "-p", "main", "-o", "%N|%c|%m|%G|%o"])).trim().split("\n");
    const { TROUPE_SLURM_CPUS: cpus, TROUPE_SLURM_MEMORY_MB: memory, TROUPE_SLURM_GPUS: gpus } = cluster.env;
    const gres = gpus === "0" ? "(null)" : `gpu:${gpus}`;
    expect(lines).toEqual([1, 2, 3].map((i) => `n${i}|${cpus}|${memory}|${gres}|${cluster.nodeAddress(i)}`));
    if (gpus === "0") return;
    const out = await run("srun", ["-N3", "--ntasks-per-node=1", "--gres=gpu:1", "bash", "-c", 'echo "$(hostname) $CUDA_VISIBLE_DEVICES"']);
    expect(out.trim().split("\n").sort()).toEqual(["n1 0", "n2 0", "n3 0"]);
    await expect(run("srun", ["-N1", `--gres=gpu:${Number(gpus) + 1}`, "true"])).rejects.toThrow(
      /Requested node configuration is not available/,
    );
  });

  it("steps of one allocation start without a new allocation (times recorded)", async () => {
    const script = "for i in 1 2 3 4 5; do s=$(date +%s%N); srun -N3 true; echo $((($(date +%s%N) - s) / 1000000)); done";
    const out = await run("salloc", ["-N3", "--ntasks-per-node=1", "bash", "-c", script]);
    const times = out.trim().split("\n").map(Number);
    expect(times).toHaveLength(5);
    timings["srun -N3 true inside an allocation"] = `${times.join(", ")} ms`;
  });

  it("a step on n1 reaches a TCP listener on n3, and every node reaches the login node", async () => {
    const dir = sharedDir("tcp");
    const id = await submit(
      dir,
      `srun -N1 -n1 -w n3 ${NODE} ${FIXTURES}/tcp-server.mjs &\nsrun -N1 -n1 -w n1 ${NODE} ${FIXTURES}/tcp-client.mjs ${cluster.nodeAddress(3)} 7777 > $D/client.out\nwait`,
      ["-N2", "-w", "n1,n3", "--ntasks-per-node=1"],
    );
    await untilState(id, /^COMPLETED$/, 30_000);
    expect(readFileSync(`${dir}/client.out`, "utf8")).toBe("reply from n3\n");

    // Back to the login node (where troupe runs): a listener here sees each node's own address.
    const peers: string[] = [];
    const server = createServer((s) => {
      peers.push(s.remoteAddress ?? "?");
      s.end("hello\n");
    });
    await new Promise<void>((r) => server.listen(0, cluster.loginAddress, r));
    try {
      const { port } = server.address() as AddressInfo;
      const out = await run("srun", ["-N3", "--ntasks-per-node=1", NODE, `${FIXTURES}/tcp-client.mjs`, cluster.loginAddress, String(port)]);
      expect(out).toBe("hello\nhello\nhello\n");
      expect(peers.sort()).toEqual([1, 2, 3].map((i) => cluster.nodeAddress(i)));
    } finally {
      server.close();
    }
  });

  it("a heterogeneous job (srun ... : ...) places components with different resources", async () => {
    const started = process.hrtime.bigint();
    const out = await run("srun", [
      ...["-N1", "-c2", "--mem=500", "bash", "-c", 'echo "lead $(hostname) $SLURM_JOB_ID"', ":"],
      ...["-N2", "-c1", "--mem=200", "bash", "-c", 'echo "worker $(hostname) $SLURM_JOB_ID"'],
    ]);
    timings["srun heterogeneous 1+2 nodes, end to end"] = `${ms(started)} ms`;
    const lines = out
      .trim()
      .split("\n")
      .map((l) => l.split(" "));
    expect(lines.map((l) => l[0]).sort()).toEqual(["lead", "worker", "worker"]);
    expect(new Set(lines.map((l) => l[1])).size).toBe(3);
    const id = lines[0]![2]!;
    // The components are jobs ID+0 and ID+1 (their own job ids, het_job_id = the first's).
    const listed = JSON.parse(await run("squeue", ["--json"])) as {
      jobs: Array<{ het_job_id: number; het_job_offset: number; job_state: string }>;
    };
    const parts = listed.jobs.filter((j) => String(j.het_job_id) === id);
    expect(parts.map((j) => j.het_job_offset).sort()).toEqual([0, 1]);
  });

  it("a barrier through srun's stdin: every task ready on its node, then one line starts them all", async () => {
    // What troupe's barrier can be: each task says it is ready, then waits for a line srun broadcasts to every
    // task (stdin goes to all tasks by default). All nodes share this machine's clock: the skew is exact.
    const task = 'echo "ready $(hostname)"; read go; echo "start $(hostname) $go $(date +%s%N)"';
    const srun = spawn("srun", ["-N3", "--ntasks-per-node=1", "--unbuffered", "bash", "-c", task], { env: cluster.env });
    let out = "";
    srun.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const ended = new Promise<number | null>((r) => srun.on("close", r));
    await pollFor("three ready tasks", 30_000, async () => ((out.match(/^ready /gm) ?? []).length === 3 ? true : undefined), 5);
    const releasedAtNs = BigInt(Date.now()) * 1_000_000n;
    srun.stdin.end("go\n");
    expect(await ended).toBe(0);
    const starts = [...out.matchAll(/^start (n\d) go (\d+)$/gm)];
    expect(starts.map((m) => m[1]).sort()).toEqual(["n1", "n2", "n3"]);
    const times = starts.map((m) => BigInt(m[2]!));
    const skewMs = Number(times.reduce((a, b) => (a > b ? a : b)) - times.reduce((a, b) => (a < b ? a : b))) / 1e6;
    const latestMs = Number(times.reduce((a, b) => (a > b ? a : b)) - releasedAtNs) / 1e6;
    timings["stdin barrier: go to last start / start skew over 3 nodes"] = `${latestMs.toFixed(1)} ms / ${skewMs.toFixed(1)} ms`;
    // No command started before the line was written (Date.now() is never ahead of the nodes' clock: the same one).
    expect(times.every((t) => t >= releasedAtNs)).toBe(true);
  });

  it("the durable design: members launched by the batch script report to troupe over TCP, wait for go, leave exit files", async () => {
    const dir = sharedDir("helper");
    type Message = { rank: string; node?: string; address?: string; job?: string; started?: number; exit?: number };
    const messages: Message[] = [];
    const sockets: import("node:net").Socket[] = [];
    let releasedAt = 0;
    const server = createServer((socket) => {
      sockets.push(socket);
      let text = "";
      socket.on("data", (d: Buffer) => {
        text += d.toString();
        for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n")) {
          messages.push(JSON.parse(text.slice(0, at)) as Message);
          text = text.slice(at + 1);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, cluster.loginAddress, r));
    try {
      const { port } = server.address() as AddressInfo;
      const submitted = process.hrtime.bigint();
      const id = await submit(dir, `srun ${NODE} ${FIXTURES}/member-helper.mjs ${cluster.loginAddress} ${port} $D 'exit $SLURM_PROCID'`, [
        "-N3",
        "--ntasks-per-node=1",
      ]);
      const placed = () => messages.filter((m) => m.node);
      await pollFor("three members placed", 30_000, async () => (placed().length === 3 ? true : undefined), 5);
      timings["durable design: sbatch to all three members waiting at the barrier"] = `${ms(submitted)} ms`;
      expect(
        placed()
          .map((m) => `${m.rank} ${m.node} ${m.address} ${m.job}`)
          .sort(),
      ).toEqual([1, 2, 3].map((i) => `${i - 1} n${i} ${cluster.nodeAddress(i)} ${id}`));
      releasedAt = performance.timeOrigin + performance.now();
      for (const socket of sockets) socket.write("go\n");
      await pollFor("three exits", 30_000, async () => (messages.filter((m) => m.exit !== undefined).length === 3 ? true : undefined), 5);
      const starts = messages.flatMap((m) => (m.started === undefined ? [] : [m.started]));
      expect(starts.every((t) => t >= releasedAt)).toBe(true);
      timings["durable design: go to last start / start skew"] =
        `${(Math.max(...starts) - releasedAt).toFixed(1)} ms / ${(Math.max(...starts) - Math.min(...starts)).toFixed(1)} ms`;
      expect(
        messages
          .filter((m) => m.exit !== undefined)
          .map((m) => `${m.rank}:${m.exit}`)
          .sort(),
      ).toEqual(["0:0", "1:1", "2:2"]);
      expect([0, 1, 2].map((r) => readFileSync(`${dir}/exit-${id}.${r}`, "utf8"))).toEqual(["0\n", "1\n", "2\n"]);
      await untilState(id, /^FAILED$/, 30_000);
      expect((await showJob(cluster, id)).ExitCode).toBe("2:0");
    } finally {
      server.close();
    }
  });

  it("a step started by srun on the login node ends with that srun; one the batch script started lives on", async () => {
    const dir = sharedDir("durable");
    const id = await submit(dir, `srun -N1 -n1 --overlap bash -c 'echo $$ > $D/batch-step; exec sleep 300' &\nwait`, ["-N1"]);
    await untilState(id, /^RUNNING$/, 30_000);
    const login = spawn("srun", ["--jobid", id, "--overlap", "-N1", "-n1", "bash", "-c", `echo $$ > ${dir}/login-step; exec sleep 300`], {
      env: cluster.env,
      stdio: "ignore",
    });
    const pidIn = (file: string) =>
      pollFor(file, 30_000, async () =>
        existsSync(file) && readFileSync(file, "utf8").endsWith("\n") ? Number(readFileSync(file, "utf8")) : undefined,
      );
    const [batchStep, loginStep] = [await pidIn(`${dir}/batch-step`), await pidIn(`${dir}/login-step`)];
    const killed = process.hrtime.bigint();
    login.kill("SIGKILL");
    await pollFor("the login node's step to end", 30_000, async () => (gone(loginStep) ? true : undefined));
    timings["srun on the login node SIGKILLed to its step's end"] = `${ms(killed)} ms`;
    expect(gone(batchStep)).toBe(false);
    expect(await run("squeue", ["-h", "-s", "-j", id, "-o", "%i"])).toMatch(new RegExp(`^${id}\\.0$`, "m"));
  });

  it("scancel of a running job ends its steps: SIGTERM first, SIGKILL after KillWait", async () => {
    const dir = sharedDir("cancel");
    const step = `trap 'echo TERM > $D/term-$(hostname); exit 143' TERM; sleep 300 & echo "$$ $!" > $D/pids-$(hostname); wait`;
    const id = await submit(dir, `srun bash -c '${step.replace(/'/g, "'\\''")}'`, ["-N3", "--ntasks-per-node=1"]);
    const pidFiles = ["n1", "n2", "n3"].map((n) => `${dir}/pids-${n}`);
    await pollFor("the three steps to start", 30_000, async () =>
      pidFiles.every((f) => existsSync(f) && readFileSync(f, "utf8").includes("\n")) ? true : undefined,
    );
    const pids = pidFiles.flatMap((f) => readFileSync(f, "utf8").trim().split(" ").map(Number));
    const cancelled = process.hrtime.bigint();
    await run("scancel", [id]);
    await untilState(id, /^CANCELLED$/, 30_000);
    await pollFor("the steps' processes to end", 30_000, async () => (pids.every(gone) ? true : undefined));
    timings["scancel to every step process gone (steps trap SIGTERM)"] = `${ms(cancelled)} ms`;
    for (const node of ["n1", "n2", "n3"]) expect(readFileSync(`${dir}/term-${node}`, "utf8")).toBe("TERM\n");
    const job = await showJob(cluster, id);
    expect([job.JobState, job.ExitCode]).toEqual(["CANCELLED", "0:15"]);
    expect(readFileSync(`${dir}/job.out`, "utf8")).toMatch(/CANCELLED AT/);

    // A step that ignores SIGTERM is killed KillWait (5 s here) later.
    const stubborn = sharedDir("stubborn");
    const id2 = await submit(stubborn, `srun bash -c 'trap "" TERM; echo $$ > $D/pid; sleep 300'`, ["-N1"]);
    await pollFor("the step to start", 30_000, async () =>
      existsSync(`${stubborn}/pid`) && readFileSync(`${stubborn}/pid`, "utf8").endsWith("\n") ? true : undefined,
    );
    const pid = Number(readFileSync(`${stubborn}/pid`, "utf8"));
    const cancelled2 = process.hrtime.bigint();
    await run("scancel", [id2]);
    await pollFor("the stubborn step to end", 30_000, async () => (gone(pid) ? true : undefined));
    timings["scancel to a SIGTERM-ignoring step gone (KillWait=5)"] = `${ms(cancelled2)} ms`;
    expect(ms(cancelled2)).toBeGreaterThanOrEqual(4_000);
  }, 90_000);

  it(
    disturbing("a job that cannot run now is PENDING with its reason; one that never can is refused by --test-only"),
    async () => {
      const dir = sharedDir("pending");
      await run("scontrol", ["update", "nodename=n3", "state=drain", "reason=troupe-test"]);
      try {
        const id = await submit(dir, "true", ["-N3"]);
        const reason = await pollFor("a pending reason", 15_000, async () => {
          const [state, why] = (await run("squeue", ["-h", "-j", id, "-o", "%T|%r"])).trim().split("|");
          return state === "PENDING" && why && why !== "None" ? why : undefined;
        });
        expect(reason).toMatch(/DOWN, DRAINED|ReqNodeNotAvail/);
        const job = await showJob(cluster, id);
        expect(job.JobState).toBe("PENDING");
        expect(job.Reason).toMatch(/DRAINED|ReqNodeNotAvail/);
        expect((await run("sinfo", ["-h", "-N", "-p", "main", "-n", "n3", "-o", "%t|%E"])).trim()).toBe("drain|troupe-test");
        await run("scontrol", ["update", "nodename=n3", "state=resume"]);
        await untilState(id, /^COMPLETED$/, 30_000);
      } finally {
        await run("scontrol", ["update", "nodename=n3", "state=resume"]).catch(() => undefined);
      }

      // Busy: every node held whole, then a job of one task waits for Resources.
      const hold = await submit(dir, "sleep 300", ["-N3", "--exclusive"]);
      await untilState(hold, /^RUNNING$/, 30_000);
      const waiting = await submit(dir, "true", ["-N1"]);
      await pollFor("Reason=Resources", 15_000, async () => ((await showJob(cluster, waiting)).Reason === "Resources" ? true : undefined));

      // More nodes than the partition has: sbatch accepts it and it pends forever (PartitionNodeLimit);
      // --test-only refuses it at once, with a reason.
      const never = await submit(dir, "true", ["-N4"]);
      await pollFor("PartitionNodeLimit", 15_000, async () =>
        (await showJob(cluster, never)).Reason === "PartitionNodeLimit" ? true : undefined,
      );
      await expect(run("sbatch", ["--test-only", "-N4", "--wrap", "true"])).rejects.toThrow(
        /Requested node configuration is not available/,
      );
    },
    90_000,
  );

  it("exit codes without accounting: scontrol/squeue while the job is kept, the jobcomp file, a wrapper's file", async () => {
    await expect(run("sacct", ["-j", "1"])).rejects.toThrow(/accounting storage is disabled/);
    const dir = sharedDir("exit");
    const id = await submit(dir, `srun -w n2 bash -c 'exit 3'\ncode=$?\necho $code > $D/srun-exit\nexit $code`, ["-N1", "-w", "n2"]);
    await untilState(id, /^FAILED$/, 30_000);
    const job = await showJob(cluster, id);
    expect([job.JobState, job.ExitCode, job.Reason]).toEqual(["FAILED", "3:0", "NonZeroExitCode"]);
    // squeue --json gives wait statuses: exit 3 is 3 << 8.
    const listed = JSON.parse(await run("squeue", ["--json", "-j", id])) as { jobs: Array<{ job_id: number; exit_code: number }> };
    expect(listed.jobs.find((j) => String(j.job_id) === id)?.exit_code).toBe(3 << 8);
    expect(readFileSync(`${dir}/srun-exit`, "utf8")).toBe("3\n");
    const jobcomp = await pollFor("the jobcomp line", 10_000, async () =>
      readFileSync(`${cluster.dir}/ctld/jobcomp.log`, "utf8")
        .split("\n")
        .find((l) => l.startsWith(`JobId=${id} `)),
    );
    expect(jobcomp).toMatch(/JobState=FAILED .*ExitCode=3:0/);
  });

  it(
    disturbing("a killed slurmd: its node goes DOWN, its jobs NODE_FAIL (or requeued); up.sh brings it back"),
    async () => {
      const dir = sharedDir("nodefail");
      const id = await submit(dir, `srun bash -c 'echo $$ > $D/pid; exec sleep 300'`, ["-N1", "-w", "n2", "--no-requeue"]);
      const requeued = await submit(dir, "sleep 300", ["-N1", "-w", "n2", "--requeue"]);
      await pollFor("the step to start", 30_000, async () =>
        existsSync(`${dir}/pid`) && readFileSync(`${dir}/pid`, "utf8").endsWith("\n") ? true : undefined,
      );
      await untilState(requeued, /^RUNNING$/, 30_000);
      const stepPid = Number(readFileSync(`${dir}/pid`, "utf8"));
      const slurmd = Number(readFileSync(`${cluster.dir}/nodes/n2/slurmd.pid`, "utf8"));
      const killed = process.hrtime.bigint();
      process.kill(slurmd, "SIGKILL");
      let notResponding: number | undefined;
      const down = await pollFor(
        "n2 to go DOWN",
        90_000,
        async () => {
          const state = await nodeState("n2");
          if (state.endsWith("*") && notResponding === undefined) notResponding = ms(killed);
          return state.startsWith("down") ? state : undefined;
        },
        200,
      );
      const downAt = ms(killed);
      expect(down).toBe("down*");
      await untilState(id, /^NODE_FAIL$/, 30_000);
      expect((await showJob(cluster, id)).Reason).toBe("NodeDown");
      // A job that may be requeued goes back to the queue (held to n2 by -w, it waits for the node).
      const again = await untilState(requeued, /^(PENDING|REQUEUED|REQUEUE_HOLD)$/, 30_000);
      timings["slurmd SIGKILL to node not responding / DOWN + NODE_FAIL"] = `${notResponding} ms / ${downAt} ms (SlurmdTimeout=10)`;
      timings["a requeueable batch job on the dead node"] = again;
      // The step's processes outlive their slurmd (nobody is left to end them) ...
      expect(gone(stepPid)).toBe(false);
      // ... until its slurmd is back: it registers, the controller tells it the job is gone, it kills the step.
      const restarted = process.hrtime.bigint();
      await run("bash", [UP_SCRIPT], 120_000);
      timings["up.sh restarting n2 until idle"] = `${ms(restarted)} ms`;
      await pollFor("the orphaned step to end", 20_000, async () => (gone(stepPid) ? true : undefined));
      expect(await nodeState("n2")).toMatch(/^(idle|mix|alloc)$/);
    },
    180_000,
  );
});
