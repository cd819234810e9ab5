/**
 * A host task's /dev, with each sandbox builder (as root): the harmless
 * devices, its own pts and shm, and of the machine's GPUs only those it was
 * given. These machines have no GPUs: two stand-in NVIDIA nodes (copies of
 * /dev/null's numbers) are made for the test and removed after it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostRuntime, type TaskLaunch } from "../../src/runtime/index.js";

const IS_ROOT = process.getuid?.() === 0;
const given = "/dev/nvidia97";
const other = "/dev/nvidia98";
const dirs: string[] = [];

beforeAll(() => {
  if (!IS_ROOT) return;
  for (const node of [given, other]) execFileSync("mknod", ["-m", "0666", node, "c", "1", "3"]);
});

afterAll(() => {
  for (const node of [given, other]) rmSync(node, { force: true });
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

async function devicesSeen(builder: "troupe-spawner" | "bwrap"): Promise<string> {
  const dataDir = mkdtempSync("/var/tmp/troupe-dev-");
  dirs.push(dataDir);
  const saved = process.env.TROUPE_SANDBOX;
  if (builder === "bwrap") process.env.TROUPE_SANDBOX = "bwrap";
  else delete process.env.TROUPE_SANDBOX;
  const runtime = new HostRuntime({ isolation: "none", home: "/nonexistent/troupe-home" });
  if (saved === undefined) delete process.env.TROUPE_SANDBOX;
  else process.env.TROUPE_SANDBOX = saved;
  expect(runtime.describe()).toMatch(builder === "bwrap" ? /bubblewrap/ : /troupe-spawner/);
  await runtime.open({ runId: "dev-test", dataDir });
  const launch: TaskLaunch = {
    key: "g/t/0",
    taskName: "t",
    groupName: "g",
    retryId: 0,
    image: "alpine",
    argv: ["sh", "-c", `ls /dev /dev/shm; echo written > ${given} && echo gpu-writable`],
    env: {},
    files: [],
    outputDir: join(dataDir, "out"),
    inputDirs: [],
    address: "127.0.0.1",
    hosts: { t: "127.0.0.1" },
    logPath: join(dataDir, "t.log"),
    gpuDevices: [97],
  };
  try {
    const member = await runtime.prepare(launch);
    member.release();
    expect(await member.exited).toEqual({ code: 0 });
    return readFileSync(launch.logPath, "utf8");
  } finally {
    await runtime.close();
  }
}

describe.skipIf(!IS_ROOT)("a host task's /dev", () => {
  it.each(["troupe-spawner", "bwrap"] as const)("holds the harmless devices and only the GPUs it was given (%s)", async (builder) => {
    const log = await devicesSeen(builder);
    const listed = log.split("\n").filter((l) => /^[a-z]/.test(l) && !l.includes(" "));
    for (const name of ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "nvidia97"])
      expect(listed).toContain(name);
    expect(listed).not.toContain("nvidia98");
    for (const hostOnly of ["vda", "sda", "mem", "kmsg", "loop0", "console"]) expect(listed).not.toContain(hostOnly);
    expect(log).toMatch(/^gpu-writable$/m);
  });
});
