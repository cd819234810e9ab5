/**
 * `credentials:` on the Slurm runtime (the real test cluster): a credential's
 * key reaches the task's environment on its node, and the member's helper
 * masks its value in the log it writes there (a secret cut across two
 * writes too), so the live output and `troupe logs` show the mask; a
 * credential's files are placed in the member's sandbox on its node, one per
 * key, readable by the task's user only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, killStartedRuns, random, TestHome, troupe } from "../run/helpers.js";
import { attemptCluster, lockCluster, type SlurmCluster } from "./slurm-cluster.js";

const TOKEN = "slurm-secret-TOKEN-93c1e0";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/credentials.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`credentials: on --runtime slurm (${attempt.reason ?? "the test cluster"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  let home: TestHome;
  const env = () => ({ SLURM_CONF: cluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster.shared, TROUPE_RUNTIME: undefined });
  const slurmArgs = ["--runtime", "slurm", "--listen-address", cluster?.loginAddress ?? ""];
  // The test files' lock on the cluster, shared: a test of another file that kills a slurmd or drains a node waits.
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await lockCluster(cluster, "shared");
  }, 30 * 60_000);
  afterAll(() => release?.());

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const set = await troupe(["credential", "set", "api", "--type", "generic", "--payload", `token=${TOKEN}`], { home: home.home });
    expect(set.stderr).toBe("");
  }, 200_000);
  afterAll(() => {
    killStartedRuns();
    home?.remove();
  });

  it("sets the environment variable on the node and masks the value in the log, the live output and troupe logs", async () => {
    const file = home.spec(
      "slurm-cred",
      `workflow:
  name: slurm-cred
  groups:
  - name: cred-${random(3)}
    tasks:
    - name: shows
      image: alpine:3.18
      command: [sh, -c]
      args:
      - |
        echo "node=$(hostname) token=$API_TOKEN"
        printf 'split: ${TOKEN.slice(0, 10)}'; sleep 0.3; printf '${TOKEN.slice(10)} end\\n'
      credentials:
        api: {API_TOKEN: token}
`,
    );
    const result = await troupe(["run", file, ...slurmArgs], { home: home.home, env: env(), timeoutMs: 90_000 });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const runId = /run (slurm-cred-\d+):/.exec(result.stdout)![1]!;
    expect(home.log(runId, "shows")).toMatch(/^node=n[123] token=\[MASKED\]\nsplit: \[MASKED\] end\n$/);
    expect(result.stdout).toMatch(/shows\s+\| split: \[MASKED\] end/);
    const logs = await troupe(["logs", runId], { home: home.home });
    expect(logs.stdout).toContain("token=[MASKED]");
    for (const text of [result.stdout, result.stderr, logs.stdout]) expect(text).not.toContain(TOKEN.slice(0, 10) + TOKEN.slice(10, 14));
  }, 120_000);

  it("places a credential's files in the member's sandbox on its node: one per key, the task's user's to read only", async () => {
    const file = home.spec(
      "slurm-cred-files",
      `workflow:
  name: slurm-cred-files
  groups:
  - name: files-${random(3)}
    tasks:
    - name: wants-files
      image: alpine:3.18
      command: [sh, -c]
      args:
      - |
        stat -c '%a %u' /run/creds/token
        [ "$(cat /run/creds/token)" = "${TOKEN}" ] && echo "the file holds the token"
      credentials:
        api: /run/creds
`,
    );
    const result = await troupe(["run", file, ...slurmArgs], { home: home.home, env: env(), timeoutMs: 90_000 });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const runId = /run (slurm-cred-files-\d+):/.exec(result.stdout)![1]!;
    // nobody (65534) reads it; the value itself never reaches the log.
    expect(home.log(runId, "wants-files")).toBe("400 65534\nthe file holds the token\n");
  }, 120_000);
});
