/**
 * Preemption on the real test cluster: a job of the `urgent` partition (PriorityTier 2, PreemptMode=CANCEL)
 * takes the nodes of a troupe job in `main`. troupe reports the attempt FAILED_PREEMPTED (OSMO's 3006) and,
 * as OSMO does, reschedules it while retries are left; without retries the task ends FAILED_PREEMPTED.
 * Skipped only when no cluster can start.
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, killStartedRuns, processesWith, random, runJson, taskOf, TestHome } from "../run/helpers.js";
import { attemptCluster, lockCluster, pollFor, slurm, type SlurmCluster } from "./slurm-cluster.js";

const readLog = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/preemption.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`preemption on Slurm (${attempt.reason ?? "the test cluster"})`, () => {
  // The test files' lock on the cluster, alone: a job of `urgent` preempts every job of `main`.
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await lockCluster(attempt.cluster!, "exclusive");
  }, 30 * 60_000);
  afterAll(() => release?.());
  const cluster = attempt.cluster as SlurmCluster;
  let home: TestHome;
  const env = () => ({ SLURM_CONF: cluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster.shared, TROUPE_RUNTIME: undefined });
  const slurmArgs = ["--runtime", "slurm", "--listen-address", cluster?.loginAddress ?? "", "--partition", "main"];
  const urgentJobs: string[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
  }, 200_000);
  afterAll(async () => {
    killStartedRuns();
    if (urgentJobs.length > 0) await slurm(cluster, "scancel", urgentJobs).catch(() => undefined);
    home?.remove();
  });

  /** Every CPU of the cluster, in `urgent`: whatever of `main` runs is preempted for it. */
  const preemptEverything = async (seconds: number) => {
    const id = (
      await slurm(cluster, "sbatch", [
        "--parsable",
        "--partition=urgent",
        "--job-name=troupe-test-urgent",
        `--nodes=${cluster.env.TROUPE_SLURM_NODES ?? 3}`,
        "--exclusive",
        "--output=/dev/null",
        `--wrap=sleep ${seconds}`,
      ])
    ).trim();
    urgentJobs.push(id);
    return id;
  };

  /** A worker that runs until the test creates `release` (readable from every node and every sandbox). */
  const spec = (name: string, marker: string, release: string) =>
    home.spec(
      name,
      `workflow:
  name: slurm-${name}
  groups:
  - name: ${name}-${random(3)}
    tasks:
    - name: worker
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        echo "attempt on $(hostname)"
        while [ ! -e ${release} ]; do sleep ${marker}; done
        echo finished
`,
    );

  it("a preempted member is FAILED_PREEMPTED (3006) and rescheduled while retries are left; the retry completes", async () => {
    const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
    const release = `${cluster.shared}/release-${random()}`;
    const file = spec("preempted", marker, release);
    const running = runJson(file, { home: home.home, env: env(), extra: [...slurmArgs, "--max-retries", "1"], timeoutMs: 150_000 });
    await pollFor("the first attempt running", 60_000, async () => (processesWith(marker).length >= 1 ? true : undefined));
    await preemptEverything(1);
    const runId = await pollFor("the run's id", 10_000, async () =>
      fs.readdirSync(`${home.home}/runs`).find((r) => r.startsWith("slurm-preempted-")),
    );
    await pollFor("the second attempt running", 90_000, async () =>
      readLog(home.logPath(runId, "worker", 1)).includes("attempt on") ? true : undefined,
    );
    fs.writeFileSync(release, "");
    const result = await running;
    fs.rmSync(release, { force: true });
    expect(result.record.status, result.stderr).toBe("COMPLETED");
    const worker = taskOf(result.record, "worker");
    expect(worker.retry_id).toBe(1);
    // Its shell may say "Terminated" as Slurm signals its sleep.
    expect(home.log(result.record.id, "worker", 0)).toMatch(/^attempt on n\d\n/);
    expect(home.log(result.record.id, "worker", 1)).toMatch(/^attempt on n\d\nfinished\n$/);
    expect(processesWith(marker)).toEqual([]);
  }, 180_000);

  it("without retries left, a preempted member ends FAILED_PREEMPTED with OSMO's 3006 and Slurm's word", async () => {
    const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
    const file = spec("no-retries", marker, `${cluster.shared}/never-${random()}`);
    const running = runJson(file, { home: home.home, env: env(), extra: slurmArgs, timeoutMs: 150_000 });
    await pollFor("the member running", 60_000, async () => (processesWith(marker).length >= 1 ? true : undefined));
    await preemptEverything(1);
    const result = await running;
    expect(result.code).toBe(1);
    const worker = taskOf(result.record, "worker");
    expect(worker.status, result.stderr).toBe("FAILED_PREEMPTED");
    expect(worker.exit_code).toBe(3006);
    expect(worker.reason).toMatch(/preempted/);
    expect(await pollFor("the preempted command to end", 20_000, async () => (processesWith(marker).length === 0 ? true : undefined))).toBe(
      true,
    );
  }, 180_000);
});
