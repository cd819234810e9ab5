/**
 * `troupe run --runtime slurm`'s live view, off a terminal (what a pipe or CI's log gets): every line a
 * task printed shows before the line saying it ended, and before the run's summary, as on this machine.
 * The members' logs are files on the cluster's shared file system, followed; the helpers' word that a
 * command ended comes over TCP, sooner. Skipped only when no cluster can start.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ensureBuilt, killStartedRuns, random, TestHome, troupe } from "../run/helpers.js";
import { attemptCluster, lockCluster, type SlurmCluster } from "./slurm-cluster.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/live-output.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`troupe run --runtime slurm, its live output (${attempt.reason ?? "the test cluster"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  let home: TestHome;
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome(cluster.shared);
  }, 200_000);
  beforeEach(async () => {
    release = await lockCluster(cluster, "shared");
  }, 300_000);
  afterEach(async () => {
    killStartedRuns();
    await release?.();
  });
  afterAll(() => home?.remove());

  it("shows each task's lines before its end and the run's summary (six tasks, each ending right after its last line)", async () => {
    // Three independent tasks and a group of three: six members, each of whose last line races its end.
    // The group's lead last (its end ends the group): the others' lines are theirs to say.
    const says = (name: string, after = "") => `["sh", "-c", "${after}echo ${name} one; echo ${name} two; echo ${name} last"]`;
    const solo = ["a", "b", "c"].map((n) => `solo-${n}`);
    const members = ["x", "y", "z"].map((n) => `member-${n}`);
    const file = home.spec(
      "live",
      `workflow:
  name: live-${random(3)}
  groups:
  - name: trio
    tasks:
${members.map((name, i) => `    - {name: ${name},${i === 0 ? " lead: true," : ""} image: alpine:3.18, command: ${says(name, i === 0 ? "sleep 1; " : "")}}`).join("\n")}
${solo.map((name) => `  - name: ${name}-group\n    tasks:\n    - {name: ${name}, image: alpine:3.18, command: ${says(name)}}`).join("\n")}
`,
    );
    const result = await troupe(["run", file, "--runtime", "slurm", "--listen-address", cluster.loginAddress], {
      home: home.home,
      env: { SLURM_CONF: cluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster.shared, TROUPE_RUNTIME: undefined },
      timeoutMs: 90_000,
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const lines = result.stdout.split("\n");
    const summary = lines.findIndex((line) => /^run live-\S+: COMPLETED/.test(line));
    expect(summary, result.stdout).toBeGreaterThan(0);
    for (const name of [...solo, ...members]) {
      const said = (text: string) => lines.findIndex((line) => new RegExp(`^${name} +\\| ${text}$`).test(line));
      const ended = lines.findIndex((line) => new RegExp(`^${name} +: COMPLETED`).test(line));
      expect(ended, `${name}'s end in:\n${result.stdout}`).toBeGreaterThan(0);
      for (const text of [`${name} one`, `${name} two`, `${name} last`]) {
        expect(said(text), `"${text}" in:\n${result.stdout}`).toBeGreaterThan(0);
        expect(said(text), `"${text}" before ${name}'s end in:\n${result.stdout}`).toBeLessThan(ended);
      }
    }
    expect(lines.slice(summary).filter((line) => / \| /.test(line))).toEqual([]);
  }, 120_000);
});
