/**
 * `troupe run --runtime slurm`: every member runs in troupe's host sandbox on its node (bubblewrap, its
 * command line computed by troupe: runtime/slurm/node-sandbox.ts), on the real test cluster
 * (scripts/slurm/up.sh). The nodes share this machine's file system, /tmp included, so what a sandbox
 * keeps private is seen to be. troupe's home is outside /tmp and open to others (0755) here, so that only
 * the sandbox keeps a task out of it. Skipped only when no cluster can start.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { homeIdentity } from "../../src/runtime/home-identity.js";
import { ensureBuilt, killStartedRuns, random, runJson, taskOf, TestHome } from "../run/helpers.js";
import { attemptCluster, type SlurmCluster } from "./slurm-cluster.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/sandbox.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`Slurm members in troupe's host sandbox (${attempt.reason ?? "the test cluster"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  /** Workflow files only; the runs' home is `home`, outside /tmp. */
  let specs: TestHome;
  let home: string;
  const env = () => ({ SLURM_CONF: cluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster.shared, TROUPE_RUNTIME: undefined });
  const slurmArgs = ["--runtime", "slurm", "--listen-address", cluster?.loginAddress ?? ""];
  const log = (runId: string, task: string) => fs.readFileSync(path.join(home, "runs", runId, "logs", `${task}.0.log`), "utf8");

  beforeAll(async () => {
    await ensureBuilt();
    specs = new TestHome();
    home = fs.mkdtempSync("/var/tmp/troupe-slurm-sandbox-");
    fs.chmodSync(home, 0o755);
  }, 200_000);
  afterAll(() => {
    killStartedRuns();
    specs?.remove();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it("places files:, keeps inputs read-only and /tmp private per member, hides troupe's home and its own files, runs the command as nobody on the node's host name", async () => {
    const mark = random(6);
    const fileDir = `/opt/troupe-slurm-sandbox-${mark}`;
    const poolDir = path.join(cluster.shared, `troupe-${homeIdentity(home)}`);
    const look = (name: string) => `
        echo "user=$(id -u)"
        echo "host=$(hostname) resolves=$(getent hosts "$(hostname)" | cut -d' ' -f1)"
        echo "file=$(cat ${fileDir}/config.txt)"
        echo "input=$(cat {{input:0}}/data.txt)"
        if touch {{input:0}}/written-by-${name} 2>/dev/null; then echo input=writable; else echo input=read-only; fi
        echo ${name} > /tmp/sandbox-${mark}; sleep 2; echo "tmp=$(cat /tmp/sandbox-${mark})"
        if ls ${home}/specs >/dev/null 2>&1; then echo home=visible; else echo home=hidden; fi
        if [ -n "$(ls -A ${poolDir} 2>/dev/null)" ]; then echo pool=visible; else echo pool=hidden; fi
        echo ${name} > {{output}}/result.txt && echo output=written`;
    const file = specs.spec(
      "sandbox",
      `workflow:
  name: slurm-sandbox
  groups:
  - name: produce-${mark}
    tasks:
    - name: producer
      image: alpine:3.18
      command: ["sh", "-c", "echo upstream > {{output}}/data.txt"]
  - name: look-${mark}
    tasks:
    - name: looker
      lead: true
      image: alpine:3.18
      inputs: [{task: producer}]
      files:
      - {path: ${fileDir}/config.txt, contents: "placed by troupe"}
      command: ["sh", "-c"]
      args:
      # The lead's end ends the group: it gives its sibling time to finish.
      - |${look("looker")}
        sleep 3
    - name: sibling
      image: alpine:3.18
      inputs: [{task: producer}]
      files:
      - {path: ${fileDir}/config.txt, contents: "placed by troupe"}
      command: ["sh", "-c"]
      args:
      - |${look("sibling")}
`,
    );
    const result = await runJson(file, { home, env: env(), extra: slurmArgs, timeoutMs: 90_000 });
    expect(result.record.status, result.stderr).toBe("COMPLETED");
    // As root (CI), troupe-slurm-helper builds troupe's own sandbox; otherwise bubblewrap does.
    const builder = process.getuid?.() === 0 ? "troupe's own, as root" : "bubblewrap";
    expect(result.stderr).toContain(`troupe's host sandbox on each Slurm node (${builder}) stands in for the images alpine:3.18`);
    // The members' helper was troupe-slurm-helper (static C, copied to the pool's directory), not the Node.js one.
    const copied = fs.readdirSync(poolDir);
    expect(copied.filter((name) => name.startsWith("troupe-slurm-helper-"))).toHaveLength(1);
    expect(copied.filter((name) => name.startsWith("member-helper-"))).toEqual([]);
    expect(result.stderr).not.toContain("troupe-slurm-helper was not built");
    for (const name of ["looker", "sibling"]) {
      const text = log(result.record.id, name);
      const ip = taskOf(result.record, name).ip ?? "";
      expect(text).toMatch(new RegExp(`^user=65534\nhost=n[123] resolves=${ip.replaceAll(".", "\\.")}\n`));
      expect(text).toContain("file=placed by troupe\ninput=upstream\ninput=read-only\n");
      // Both wrote the same path of the machine's one /tmp: each read back its own.
      expect(text).toContain(`tmp=${name}\n`);
      expect(text).toContain("home=hidden\npool=hidden\noutput=written\n");
    }
    expect(fs.existsSync(`/tmp/sandbox-${mark}`)).toBe(false);
    expect(fs.existsSync(fileDir)).toBe(false);
    expect(fs.readdirSync(path.join(home, "runs", result.record.id, "outputs", "producer", "0"))).toEqual(["data.txt"]);
  }, 120_000);

  it("a file that cannot be placed (inside troupe's home) fails its task before anything runs, saying why", async () => {
    const file = specs.spec(
      "unplaceable",
      `workflow:
  name: slurm-unplaceable
  groups:
  - name: unplaceable-${random(3)}
    tasks:
    - name: misplaced
      image: alpine:3.18
      files:
      - {path: ${home}/planted.txt, contents: "no"}
      command: ["sh", "-c", "echo ran"]
`,
    );
    const result = await runJson(file, { home, env: env(), extra: slurmArgs, timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    const task = taskOf(result.record, "misplaced");
    expect(task.reason).toContain(`cannot place ${home}/planted.txt: it is inside troupe's home, which tasks do not see`);
    expect(fs.existsSync(`${home}/planted.txt`)).toBe(false);
  }, 90_000);

  it("--task-user names who the command runs as in its sandbox; its output directory is that user's", async () => {
    const file = specs.spec(
      "user",
      `workflow:
  name: slurm-user
  groups:
  - name: user-${random(3)}
    tasks:
    - name: whoami
      image: alpine:3.18
      command: ["sh", "-c", "echo \\"ids=$(id -u):$(id -g)\\"; touch {{output}}/mine"]
`,
    );
    const result = await runJson(file, { home, env: env(), extra: [...slurmArgs, "--task-user", "4321:4322"], timeoutMs: 60_000 });
    expect(result.record.status, result.stderr).toBe("COMPLETED");
    expect(log(result.record.id, "whoami")).toBe("ids=4321:4322\n");
    const made = fs.statSync(path.join(home, "runs", result.record.id, "outputs", "whoami", "0", "mine"));
    expect([made.uid, made.gid]).toEqual([4321, 4322]);
  }, 90_000);
});
