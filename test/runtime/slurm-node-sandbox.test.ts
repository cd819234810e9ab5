/**
 * The host sandbox troupe computes for a Slurm member (runtime/slurm/node-sandbox.ts), started here by
 * bubblewrap as a member's helper starts it on its node (status on fd 3, barrier on fd 4): the node's host
 * name, resolving to the member's address; no network namespace of its own; Slurm's GPUs bound where the
 * node has them (two stand-in NVIDIA nodes, copies of /dev/null's numbers, made for the test) and its GPU
 * variables passed on; files staged and placed; the command as nobody. The cluster runs the same line
 * (test/slurm/sandbox.test.ts); this is what can be seen of it without one.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TASK_USER, hiddenPaths } from "../../src/runtime/host/sandbox.js";
import { stageNodeSandbox, type NodeSandboxSite } from "../../src/runtime/slurm/node-sandbox.js";
import type { TaskLaunch } from "../../src/runtime/index.js";
import { onPath } from "../../src/util/executables.js";

const IS_ROOT = process.getuid?.() === 0;
const given = "/dev/nvidia95";
const other = "/dev/nvidia96";
const dirs: string[] = [];

beforeAll(() => {
  if (!IS_ROOT) return;
  for (const node of [given, other]) execFileSync("mknod", ["-m", "0666", node, "c", "1", "3"]);
});

afterAll(() => {
  for (const node of [given, other]) rmSync(node, { force: true });
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function fixture(argv: string[], files: TaskLaunch["files"] = []) {
  const home = mkdtempSync("/var/tmp/troupe-node-sandbox-home-");
  const shared = mkdtempSync("/var/tmp/troupe-node-sandbox-shared-");
  dirs.push(home, shared);
  const launch: TaskLaunch = {
    key: "g/t/0",
    taskName: "t",
    groupName: "g",
    retryId: 0,
    image: "alpine:3.18",
    argv,
    env: { OWN: "the task's" },
    files,
    outputDir: join(home, "runs", "r", "outputs", "t", "0"),
    inputDirs: [],
    address: "127.0.0.1",
    hosts: { t: "127.0.0.1", u: "127.0.0.2" },
    logPath: join(home, "runs", "r", "logs", "t.0.log"),
  };
  const site: NodeSandboxSite = { home, hidden: hiddenPaths(home, shared), root: IS_ROOT, ownSandbox: false, taskUser: DEFAULT_TASK_USER };
  return { launch, site, memberDir: join(shared, "members", "g", "t", "0") };
}

/** Starts the sandbox as the helper does and releases it at once: its exit code (bwrap's status) and its output. */
function runSandbox(argv: string[]): Promise<{ exitCode: number | undefined; output: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"] });
  let output = "";
  let status = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  // EPIPE/ECONNRESET as the sandbox ends: its status says how.
  for (const fd of [3, 4]) (child.stdio[fd] as Socket).on("error", () => undefined);
  (child.stdio[3] as Socket).on("data", (chunk: Buffer) => {
    status += chunk.toString();
    // Set up and held at the barrier: go.
    if (status.includes("child-pid")) (child.stdio[4] as Socket).end("go");
  });
  return new Promise((resolve) =>
    child.on("close", () => {
      const exit = status
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((m) => typeof m["exit-code"] === "number");
      resolve({ exitCode: exit?.["exit-code"] as number | undefined, output });
    }),
  );
}

describe.skipIf(!IS_ROOT || !onPath("bwrap"))("a Slurm member's host sandbox, built by bubblewrap", () => {
  it("has the node's host name (resolving to the member's address), the host's network, Slurm's GPU, the task's files and user", async () => {
    const script = `echo "user=$(id -u) host=$(hostname) resolves=$(getent hosts n7 | cut -d' ' -f1)"
echo "cuda=$CUDA_VISIBLE_DEVICES ordinal=$GPU_DEVICE_ORDINAL step=\${SLURM_STEP_GPUS:-none} own=$OWN"
ls /dev | grep nvidia | tr '\\n' ' '; echo
cat /opt/troupe-node-sandbox/config.txt
readlink /proc/self/ns/net
echo out > $OUTPUT/result.txt && echo output-written`;
    const { launch, site, memberDir } = fixture(
      ["sh", "-c", script],
      [{ path: "/opt/troupe-node-sandbox/config.txt", contents: Buffer.from("placed\n") }],
    );
    launch.env.OUTPUT = launch.outputDir;
    // Where troupe-slurm-helper builds troupe's own sandbox, a member with GPUs still gets bwrap (its --dev-bind-try).
    const { sandbox: argv, ownSandbox } = stageNodeSandbox(
      launch,
      { node: "n7", gpuEnv: { SLURM_STEP_GPUS: "95", CUDA_VISIBLE_DEVICES: "0", GPU_DEVICE_ORDINAL: "0", SLURM_JOB_GPUS: "95" } },
      memberDir,
      { ...site, ownSandbox: true },
    );
    expect(ownSandbox).toBe(false);
    expect(argv[0]).toBe("bwrap");
    expect(argv).not.toContain("--unshare-net");
    expect(argv).toContain("--dev-bind-try");
    expect(statSync(launch.outputDir).uid).toBe(DEFAULT_TASK_USER.uid);
    expect(readFileSync(join(memberDir, "sandbox", "hosts"), "utf8")).toContain("127.0.0.1\tn7\n");
    const { exitCode, output } = await runSandbox(argv);
    expect(output).toBe(
      "user=65534 host=n7 resolves=127.0.0.1\ncuda=0 ordinal=0 step=none own=the task's\nnvidia95 nvidiactl \nplaced\n".replace(
        "nvidiactl ",
        existsSync("/dev/nvidiactl") ? "nvidiactl " : "",
      ) + `${readlinkSync("/proc/self/ns/net")}\noutput-written\n`,
    );
    expect(exitCode).toBe(0);
  });

  it("refuses a file it cannot place before anything is staged", () => {
    const { launch, site, memberDir } = fixture(["true"]);
    launch.files = [{ path: join(site.home, "planted.txt"), contents: Buffer.from("no") }];
    expect(() => stageNodeSandbox(launch, { node: "n7", gpuEnv: {} }, memberDir, site)).toThrow(
      `cannot place ${site.home}/planted.txt: it is inside troupe's home, which tasks do not see`,
    );
    expect(existsSync(join(memberDir, "sandbox", "file.0"))).toBe(false);
  });

  it("jobs as a user (troupe not root): a user namespace, the command as that user, nothing chowned; a privileged task as root: no setpriv", () => {
    const asUser = fixture(["true"]);
    const { sandbox: argv } = stageNodeSandbox(asUser.launch, { node: "n7", gpuEnv: {} }, asUser.memberDir, {
      ...asUser.site,
      root: false,
    });
    expect(argv).toContain("--unshare-user");
    expect(argv.some((word) => word.endsWith("/setpriv"))).toBe(false);
    expect(statSync(asUser.launch.outputDir).uid).toBe(0);
    const privileged = fixture(["true"]);
    privileged.launch.privileged = true;
    const { sandbox: rootArgv } = stageNodeSandbox(privileged.launch, { node: "n7", gpuEnv: {} }, privileged.memberDir, privileged.site);
    expect(rootArgv).not.toContain("--unshare-user");
    expect(rootArgv.some((word) => word.endsWith("/setpriv"))).toBe(false);
    // No GPUs given: none bound, no GPU variable set.
    expect(rootArgv).not.toContain("--dev-bind-try");
    expect(rootArgv).not.toContain("CUDA_VISIBLE_DEVICES");
  });
});
