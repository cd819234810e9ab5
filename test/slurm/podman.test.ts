/**
 * `troupe run --runtime slurm --node-engine podman` on the real test cluster (scripts/slurm/up.sh): each member
 * a podman container of its image on its node (the nodes share this machine's rootful podman, its images and
 * CONTAINERS_CONF). The image's own files, `files:` placed, inputs read-only, the node's network across nodes,
 * exact exit codes, an image no node can have (FAILED_IMAGE_PULL), and a cancel that leaves no container: a
 * container is not a process of its Slurm step, so troupe's helper removes it, and a helper killed outright
 * takes it along (troupe-init's owner socket). Skipped only when no cluster
 * can start or podman has no alpine:3.18 here.
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, killStartedRuns, processesWith, random, runJson, taskOf, TestHome, troupe } from "../run/helpers.js";
import { LoginRecorder } from "../run/registry-recorder.js";
import { attemptCluster, pollFor, runScript, slurm, UP_SCRIPT, type SlurmCluster } from "./slurm-cluster.js";

function podmanWorks(): boolean {
  try {
    execFileSync("podman", ["image", "exists", "alpine:3.18"], { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

const attempt = attemptCluster();
const why = attempt.reason ?? (podmanWorks() ? undefined : "podman has no alpine:3.18 here");
if (why) console.warn(`test/slurm/podman.test.ts skipped: ${why}`);

/** The containers of run `runId` (any state), by name. */
const containersOf = (runId: string) =>
  execFileSync("podman", ["ps", "--all", "--filter", `label=troupe.run=${runId}`, "--format", "{{.Names}}"], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean);

describe.skipIf(why !== undefined)(`Slurm members in podman containers on their nodes (${why ?? "the test cluster"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  let specs: TestHome;
  let home: string;
  const env = () => ({ SLURM_CONF: cluster.env.SLURM_CONF, TROUPE_SLURM_SHARED: cluster.shared, TROUPE_RUNTIME: undefined });
  const slurmArgs = ["--runtime", "slurm", "--node-engine", "podman", "--listen-address", cluster?.loginAddress ?? ""];
  const log = (runId: string, task: string) => fs.readFileSync(path.join(home, "runs", runId, "logs", `${task}.0.log`), "utf8");
  /** A workflow `slurm-podman-KIND` of one member, TASK, looping until stopped (its sleep's argument the marker). */
  const loopingMember = (kind: string, group: string, task: string, before = "") => {
    const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
    const command = `${before}while :; do sleep ${marker}; done`;
    const spec = `workflow:\n  name: slurm-podman-${kind}\n  groups:\n  - name: ${group}\n    tasks:\n    - name: ${task}\n`;
    const file = specs.spec(kind, `${spec}      image: alpine:3.18\n      command: ["sh", "-c", "${command}"]\n`);
    return { file, marker };
  };
  /** Run `slurm-podman-KIND-...`'s id once its member's command runs and its container exists. */
  const runningContainer = async (kind: string, marker: string) => {
    await pollFor("the member running", 60_000, async () => (processesWith(marker).length >= 1 ? true : undefined));
    const runId = fs.readdirSync(path.join(home, "runs")).find((r) => r.startsWith(`slurm-podman-${kind}-`))!;
    // `podman run`'s own command line holds the marker before its container exists: waited for, not assumed.
    expect(await pollFor("its container", 30_000, async () => (containersOf(runId).length === 1 ? true : undefined))).toBe(true);
    return runId;
  };

  beforeAll(async () => {
    await ensureBuilt();
    specs = new TestHome();
    home = fs.mkdtempSync("/var/tmp/troupe-slurm-podman-");
  }, 200_000);
  afterAll(() => {
    killStartedRuns();
    specs?.remove();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it("runs each member in its image on its node: files placed, inputs read-only, siblings reached by {{host:}} across nodes, exit codes exact, nothing left", async () => {
    const mark = random(6);
    const file = specs.spec(
      "containers",
      `workflow:
  name: slurm-podman
  groups:
  - name: produce-${mark}
    tasks:
    - name: producer
      image: alpine:3.18
      command: ["sh", "-c", "echo upstream > {{output}}/data.txt"]
  - name: talk-${mark}
    tasks:
    - name: server
      lead: true
      image: alpine:3.18
      inputs: [{task: producer}]
      files:
      - {path: /etc/troupe-podman-${mark}.txt, contents: "placed by troupe"}
      command: ["sh", "-c"]
      args:
      - |
        echo "image=$(. /etc/os-release; echo $ID) host=$(hostname)"
        echo "file=$(cat /etc/troupe-podman-${mark}.txt) input=$(cat {{input:0}}/data.txt)"
        if touch {{input:0}}/written 2>/dev/null; then echo input=writable; else echo input=read-only; fi
        echo hello | nc -l -p 24835 -w 30
        echo served > {{output}}/result.txt
    - name: client
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        for i in $(seq 1 100); do got=$(nc -w 2 {{host:server}} 24835 </dev/null) && [ -n "$got" ] && break; sleep 0.2; done
        echo "got=$got host=$(hostname)"
        exit 3
`,
    );
    const result = await runJson(file, { home, env: env(), extra: slurmArgs, timeoutMs: 120_000 });
    expect(result.record.status, result.stderr).toBe("COMPLETED");
    expect(result.stderr).toContain("each task runs in a podman container of its image on its node");
    const host = fs.readFileSync("/etc/os-release", "utf8").match(/^ID=(.*)$/m)?.[1];
    const server = log(result.record.id, "server");
    // The image's own files, not the node's (this machine's).
    expect(server).toMatch(/^image=(\S+) host=n[123]\n/);
    expect(/^image=(\S+)/.exec(server)?.[1]).not.toBe(host);
    expect(server).toContain("file=placed by troupe input=upstream\ninput=read-only\n");
    expect(log(result.record.id, "client")).toMatch(/^got=hello host=n[123]\n$/);
    const [s, c] = ["server", "client"].map((t) => taskOf(result.record, t));
    expect(s!.ip).not.toBe(c!.ip);
    expect(c!.exit_code).toBe(3);
    expect(fs.readFileSync(path.join(home, "runs", result.record.id, "outputs", "server", "0", "result.txt"), "utf8")).toBe("served\n");
    expect(containersOf(result.record.id)).toEqual([]);
  }, 180_000);

  it("an image no node can have ends its task FAILED_IMAGE_PULL, saying why", async () => {
    const image = `localhost/troupe-slurm-podman/no-such-image:${random(6)}`;
    const file = specs.spec(
      "nosuch",
      `workflow:\n  name: slurm-nosuch\n  groups:\n  - name: nosuch-${random(3)}\n    tasks:\n    - {name: t, image: "${image}", command: ["true"]}\n`,
    );
    const result = await runJson(file, { home, env: env(), extra: slurmArgs, timeoutMs: 120_000 });
    expect(result.code).toBe(1);
    const task = taskOf(result.record, "t");
    expect(task.status).toBe("FAILED_IMAGE_PULL");
    expect(task.reason).toContain(`cannot pull ${image} on node n`);
  }, 150_000);

  it("Ctrl-C cancels the run: its job is cancelled and its containers removed (they are not processes of the step)", async () => {
    const group = `cancel-${random(3)}`;
    const { file, marker } = loopingMember("cancel", group, "sleeper");
    let child: import("node:child_process").ChildProcess | undefined;
    const running = troupe(["run", file, "--output", "json", ...slurmArgs], {
      home,
      env: env(),
      timeoutMs: 120_000,
      onSpawn: (c) => (child = c),
    });
    const runId = await runningContainer("cancel", marker);
    child!.kill("SIGINT");
    const result = await running;
    expect(result.code).toBe(130);
    const jobs = async () =>
      (await slurm(cluster, "squeue", ["-h", "-o", "%j"])).split("\n").filter((name) => name.endsWith(`-${group}`)).length;
    expect(await pollFor("the job to leave squeue", 30_000, async () => ((await jobs()) === 0 ? true : undefined))).toBe(true);
    expect(await pollFor("the command to end", 30_000, async () => (processesWith(marker).length === 0 ? true : undefined))).toBe(true);
    expect(containersOf(runId)).toEqual([]);
  }, 180_000);

  it("a helper killed outright (as Slurm does when its KillWait is over): its container goes with it", async () => {
    const { file, marker } = loopingMember("helperkill", `helperkill-${random(3)}`, "orphan");
    const running = runJson(file, { home, env: env(), extra: slurmArgs, timeoutMs: 120_000 });
    const runId = await runningContainer("helperkill", marker);
    // The member's helper (node member-helper.mjs MEMBERS, on its node: srun's own line names it too).
    const helpers = processesWith(runId).filter((p) => p.cmdline.includes("member-helper") && !p.cmdline.startsWith("srun"));
    expect(helpers).toHaveLength(1);
    // No SIGTERM first: the helper has no moment to remove its container. conmon is no process of the step.
    process.kill(helpers[0]!.pid, "SIGKILL");
    expect(await pollFor("the command to end", 30_000, async () => (processesWith(marker).length === 0 ? true : undefined))).toBe(true);
    expect(await pollFor("its container removed", 30_000, async () => (containersOf(runId).length === 0 ? true : undefined))).toBe(true);
    const result = await running;
    expect(taskOf(result.record, "orphan").status, result.stderr).toMatch(/^FAILED/);
  }, 180_000);

  it("pulls a member's image on its node with the run owner's registry login: an authfile of its own, removed after", async () => {
    // The stand-in registry where the nodes reach it (the login node's bridge address); plain HTTP, so insecure.
    const registry = new LoginRecorder();
    await registry.start(cluster.loginAddress);
    const secret = `slurm-registry-${random(8)}`;
    try {
      registry.logins.add(`robot:${secret}`);
      const conf = path.join(home, "registries.conf");
      fs.writeFileSync(conf, `[[registry]]\nlocation = "${registry.address}"\ninsecure = true\n`);
      const payload = [`registry=${registry.address}/team`, "username=robot", `auth=${secret}`];
      const set = await troupe(["credential", "set", "reg", "--type", "registry", "--payload", ...payload], { home });
      expect(set.code, set.stderr).toBe(0);
      const repo = `team/${random()}`;
      const file = specs.spec(
        "private",
        `workflow:\n  name: slurm-podman-private\n  tasks:\n  - {name: t, image: "${registry.address}/${repo}:1", command: [true]}\n`,
      );
      // sbatch passes troupe's environment on to the job: the helper's podman reads the same registries.conf.
      const result = await runJson(file, {
        home,
        env: { ...env(), CONTAINERS_REGISTRIES_CONF: conf },
        extra: slurmArgs,
        timeoutMs: 120_000,
      });
      const task = taskOf(result.record, "t");
      expect(task.status, result.stderr).toBe("FAILED_IMAGE_PULL");
      expect(task.reason).toContain(`cannot pull ${registry.address}/${repo}:1 on node n`);
      expect(registry.loginsFor(repo)).toContain(`robot:${secret}`);
      expect(JSON.stringify(result.record)).not.toContain(secret);
      // The authfile (the member's own, on the shared file system) is gone: no login is left where nodes see it.
      const { stdout } = await promisify(execFile)("find", [cluster.shared, "-name", "pull-auth.json"], { encoding: "utf8" });
      expect(stdout).toBe("");
    } finally {
      await registry.close();
    }
  }, 150_000);

  it("a node whose slurmd dies mid-run: its member ends FAILED_BACKEND_ERROR, and once the node is back its container is gone", async () => {
    const { file, marker } = loopingMember("nodefail", `nodefail-${random(3)}`, "victim", "echo node=$(hostname); ");
    const running = runJson(file, { home, env: env(), extra: slurmArgs, timeoutMs: 150_000 });
    let runId = "";
    try {
      await pollFor("the member running", 60_000, async () => (processesWith(marker).length >= 1 ? true : undefined));
      runId = fs.readdirSync(path.join(home, "runs")).find((r) => r.startsWith("slurm-podman-nodefail-"))!;
      const node = await pollFor("the member's node in its log", 10_000, async () => {
        const text = fs.existsSync(path.join(home, "runs", runId, "logs", "victim.0.log")) ? log(runId, "victim") : "";
        return /node=(n\d)/.exec(text)?.[1];
      });
      process.kill(Number(fs.readFileSync(`${cluster.dir}/nodes/${node}/slurmd.pid`, "utf8")), "SIGKILL");
      const result = await running;
      expect(taskOf(result.record, "victim").status, result.stderr).toBe("FAILED_BACKEND_ERROR");
    } finally {
      const repaired = await runScript(cluster, UP_SCRIPT);
      expect(repaired.code, repaired.stderr).toBe(0);
    }
    expect(
      await pollFor("the orphaned command to end", 30_000, async () => (processesWith(marker).length === 0 ? true : undefined), 500),
    ).toBe(true);
    expect(containersOf(runId)).toEqual([]);
  }, 200_000);
});
