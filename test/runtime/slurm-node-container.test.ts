/**
 * The container troupe computes for a Slurm member with `node_engine: podman`
 * (runtime/slurm/node-container.ts), run here by podman as a member's helper
 * runs it on its node: the image's files, the node's host name and network (no
 * address of its own), the group's names in its hosts file, files placed,
 * inputs read-only, Slurm's GPUs as CDI devices and its GPU variables passed;
 * troupe-init holding the command until "go" (the text troupe made, written
 * into the control directory as the helper writes it), and a verdict troupe
 * believes only with the release's nonce. The cluster runs the same
 * (test/slurm/podman.test.ts).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { newRelease, releasedNonce, verdictOf } from "../../src/runtime/container/verdict.js";
import type { TaskLaunch } from "../../src/runtime/index.js";
import { builtHelper } from "../../src/runtime/native-helpers.js";
import { stageNodeContainer } from "../../src/runtime/slurm/node-container.js";
import { ensureSpawnerBuilt } from "./spawner-fixtures.js";

const IS_ROOT = process.getuid?.() === 0;
const dirs: string[] = [];

function podmanWorks(): boolean {
  try {
    execFileSync("podman", ["image", "exists", "alpine:3.18"], { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function fixture(argv: string[]) {
  const home = mkdtempSync("/var/tmp/troupe-node-container-");
  dirs.push(home);
  const input = join(home, "runs", "r", "outputs", "up", "0");
  mkdirSync(input, { recursive: true });
  writeFileSync(join(input, "data.txt"), "upstream\n");
  const launch: TaskLaunch = {
    key: "g/t/0",
    taskName: "t",
    groupName: "g",
    retryId: 0,
    image: "alpine:3.18",
    argv,
    env: { OWN: "the task's" },
    files: [{ path: "/etc/troupe-node-container.txt", contents: Buffer.from("placed") }],
    outputDir: join(home, "runs", "r", "outputs", "t", "0"),
    inputDirs: [input],
    address: "10.250.0.11",
    hosts: { t: "10.250.0.11", u: "10.250.0.12" },
    logPath: join(home, "runs", "r", "logs", "t.0.log"),
  };
  return { launch, input, memberDir: join(home, "shared", "members", "g", "t", "0") };
}

describe("a Slurm member's podman container: its arguments", () => {
  it("the node's network and host name, the group's names, Slurm's GPUs as CDI devices and its variables, troupe-init first", () => {
    const { launch, memberDir } = fixture(["true"]);
    const { command, controlDir, name } = stageNodeContainer(
      launch,
      { node: "n7", gpuEnv: { SLURM_STEP_GPUS: "1", CUDA_VISIBLE_DEVICES: "0" } },
      memberDir,
      { init: "/opt/troupe-init", prefix: "troupe-home-run", labels: { "troupe.run": "run" } },
    );
    expect(command.slice(0, 2)).toEqual(["podman", "run"]);
    expect(name).toBe("troupe-home-run-t-0");
    const pairs = (flag: string) => command.flatMap((word, i) => (word === flag ? [command[i + 1]] : []));
    expect(pairs("--network")).toEqual(["host"]);
    expect(command).not.toContain("--ip");
    expect(pairs("--hostname")).toEqual(["n7"]);
    expect(pairs("--add-host")).toEqual(
      expect.arrayContaining(["n7:10.250.0.11", "t:10.250.0.11", "u:10.250.0.12", "u.g.troupe.internal:10.250.0.12"]),
    );
    expect(pairs("--device")).toEqual(["nvidia.com/gpu=1"]);
    expect(pairs("--env")).toEqual(expect.arrayContaining(["CUDA_VISIBLE_DEVICES=0", "OWN=the task's"]));
    // troupe-init, owned by the helper that runs podman (fd 3, passed into the container).
    expect(pairs("--entrypoint")).toEqual(['["/.troupe/init","--owner-fd=3","--"]']);
    expect(pairs("--preserve-fds")).toEqual(["1"]);
    expect(readFileSync(join(controlDir, "file.0"), "utf8")).toBe("placed");
    expect(command.slice(command.indexOf("--") + 1)).toEqual(["alpine:3.18", "true"]);
  });
});

describe.skipIf(!IS_ROOT || !podmanWorks())("a Slurm member's podman container, run", () => {
  it("holds its command until go, runs it in its image with its files and inputs read-only, and leaves a verdict with the nonce", async () => {
    ensureSpawnerBuilt();
    const script = `echo "image=$(. /etc/os-release; echo $ID) host=$(hostname) file=$(cat /etc/troupe-node-container.txt)"
if touch $INPUT/written 2>/dev/null; then echo input=writable; else echo input=read-only; fi
echo out > $OUTPUT/result.txt; exit 4`;
    const { launch, input, memberDir } = fixture(["sh", "-c", script]);
    Object.assign(launch.env, { INPUT: input, OUTPUT: launch.outputDir });
    const { command, controlDir } = stageNodeContainer(launch, { node: "n7", gpuEnv: {} }, memberDir, {
      init: builtHelper("troupe-init")!,
      prefix: `troupe-test-${process.pid}`,
      labels: { "troupe.run": `node-container-test-${process.pid}` },
    });
    mkdirSync(join(launch.logPath, ".."), { recursive: true });
    let output = "";
    // fd 3: the owner's socket, as the helper gives it.
    const engine = spawn(command[0]!, command.slice(1), { cwd: controlDir, stdio: ["ignore", "pipe", "pipe", "pipe"] });
    engine.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    engine.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const ended = new Promise<number>((resolve) => engine.on("close", (code) => resolve(code ?? 128)));
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(controlDir, "ready")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(controlDir, "ready")), output).toBe(true);
    // Held at the barrier: nothing of the command yet.
    await new Promise((r) => setTimeout(r, 300));
    expect(output).toBe("");
    const { go } = newRelease(controlDir);
    writeFileSync(join(controlDir, ".go"), go);
    renameSync(join(controlDir, ".go"), join(controlDir, "go"));
    await ended;
    expect(output).toBe(
      `image=${/^ID=(.*)$/m.exec(execFileSync("podman", ["run", "--rm", "alpine:3.18", "cat", "/etc/os-release"], { encoding: "utf8" }))?.[1]} host=n7 file=placed\ninput=read-only\n`,
    );
    const verdict = readFileSync(join(controlDir, "verdict"), "utf8");
    expect(verdictOf(verdict, releasedNonce(controlDir))).toEqual({ code: 4, oom: false });
    expect(verdictOf(verdict, "another nonce")).toBeUndefined();
    expect(readFileSync(join(launch.outputDir, "result.txt"), "utf8")).toBe("out\n");
    expect(existsSync(join(input, "written"))).toBe(false);
  }, 120_000);
});
