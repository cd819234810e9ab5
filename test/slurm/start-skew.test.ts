/**
 * The barrier across nodes, and its start skew in the record: a group of six members over the three nodes of
 * the real test cluster starts no command before every member waits at the barrier, and each task's recorded
 * start_time is when its command started on its node (by the node's clock, as the member's helper saw it),
 * not when troupe decided to release it. Skipped only when no cluster can start.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, killStartedRuns, ms, random, runJson, taskOf, TestHome } from "../run/helpers.js";
import { attemptCluster, lockCluster, type SlurmCluster } from "./slurm-cluster.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/start-skew.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`start skew on Slurm (${attempt.reason ?? "the test cluster"})`, () => {
  // The test files' lock on the cluster, alone: six members of two CPUs take every CPU of the cluster.
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await lockCluster(attempt.cluster!, "exclusive");
  }, 30 * 60_000);
  afterAll(() => release?.());
  const cluster = attempt.cluster as SlurmCluster;
  let home: TestHome;
  const env = () => ({ SLURM_CONF: cluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster.shared, TROUPE_RUNTIME: undefined });

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
  }, 200_000);
  afterAll(() => {
    killStartedRuns();
    home?.remove();
  });

  it("six members over three nodes: each record's start_time is its command's start on its node, the skew small", async () => {
    const names = ["m1", "m2", "m3", "m4", "m5", "m6"];
    const tasks = names
      .map(
        // The lead stays a little: its end ends the group, and the others must have said when they started.
        (name) => `    - name: ${name}
      ${name === "m1" ? "lead: true\n      " : ""}image: alpine:3.18
      command: ["sh", "-c", "echo started=$(date +%s%N) node=$(hostname)${name === "m1" ? "; sleep 2" : ""}"]`,
      )
      .join("\n");
    const file = home.spec(
      "six",
      `workflow:
  name: slurm-six
  resources:
    default:
      cpu: 2
  groups:
  - name: six-${random(3)}
    tasks:
${tasks}
`,
    );
    const result = await runJson(file, {
      home: home.home,
      env: env(),
      extra: ["--runtime", "slurm", "--listen-address", cluster.loginAddress, "--spread", "pack"],
      timeoutMs: 90_000,
    });
    expect(result.record.status, result.stderr).toBe("COMPLETED");
    const nodes = new Set<string>();
    const recorded: number[] = [];
    for (const name of names) {
      const log = home.log(result.record.id, name);
      const m = /started=(\d+) node=(\S+)/.exec(log);
      expect(m, log).not.toBeNull();
      nodes.add(m![2]!);
      const saidMs = Number(BigInt(m![1]!) / 1_000_000n);
      const startMs = ms(taskOf(result.record, name).start_time);
      recorded.push(startMs);
      // Recorded as the helper started the command: just before the command's own first word (one clock here).
      expect(saidMs - startMs).toBeGreaterThanOrEqual(0);
      expect(saidMs - startMs).toBeLessThan(1_000);
    }
    // Packed, two CPUs each on nodes of four: two members on each of the three nodes.
    expect([...nodes].sort()).toEqual(["n1", "n2", "n3"]);
    const skew = Math.max(...recorded) - Math.min(...recorded);
    expect(skew).toBeLessThan(1_000);
  }, 120_000);
});
