/**
 * The container runtime (podman CLI, as root) re-attaching kept attempts an
 * earlier process started: where troupe answered a group's names, it does
 * again for an attempt that still runs, on its network's gateway, and never
 * for one that has ended. The gateway of an ended attempt's network may be
 * another run's by now (the network removed with the run's idle networks,
 * the /24 taken by a new network): a name server bound there took its port
 * 53, and that run's group failed to start ("no name server for the group
 * on 10.214.1.1: bind EADDRINUSE"). Loopback addresses stand for the
 * gateway here (every 127/8 address is this machine's): nothing of podman's
 * is made, and nothing of other tests is touched.
 */
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { PodmanCliBackend } from "../../src/runtime/container/cli-backend.js";
import { ContainerRuntime, type TaskLaunch } from "../../src/runtime/index.js";
import { attemptSandboxDir } from "../../src/model/index.js";
import { keeperAlive, keptStateDir, readKeptExit, signalKept } from "../../src/runtime/kept-task.js";
import { ensureSpawnerBuilt, isRoot, spawnerFixtures, waitFor } from "./spawner-fixtures.js";

const { tempDir, newSpawner, closeSpawners, removeDirs } = spawnerFixtures("troupe-reattach");

function podmanWorks(): boolean {
  try {
    execFileSync("podman", ["version"], { stdio: "ignore", timeout: 30_000 });
    return isRoot;
  } catch {
    return false;
  }
}

const keepers: string[] = [];
afterEach(async () => {
  for (const dir of keepers.splice(0)) {
    signalKept(dir, 9);
    await waitFor(() => !keeperAlive(dir), "the keeper to end", 10_000).catch(() => undefined);
  }
  closeSpawners();
  removeDirs();
});

beforeAll(ensureSpawnerBuilt);

/** A loopback /24 of its own per test: its .1 stands for the group network's gateway. */
const prefix = () => `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;

function launchOf(dataDir: string, net: string): TaskLaunch {
  return {
    key: "pair/lead/0",
    taskName: "lead",
    groupName: "pair",
    retryId: 0,
    image: "alpine:3.18",
    argv: ["true"],
    env: {},
    files: [],
    outputDir: join(dataDir, "outputs", "lead", "0"),
    inputDirs: [],
    address: `${net}.2`,
    hosts: { lead: `${net}.2`, peer: `${net}.3` },
    logPath: join(dataDir, "logs", "lead.0.log"),
  };
}

/** Whether this process can take port 53 of the address (UDP): free, or troupe's name server has it. */
function bindable(address: string): Promise<boolean> {
  const socket = createSocket("udp4");
  return new Promise((resolve) => {
    socket.once("error", () => resolve(false));
    socket.bind(53, address, () => socket.close(() => resolve(true)));
  });
}

/** A keeper over `sleep` (no container of podman's) in state directory `keep`. */
function startKeeper(keep: string, logPath: string): void {
  keepers.push(keep);
  const events = { status: () => undefined, exit: () => undefined };
  newSpawner()
    .start({ argv: ["sleep", "600"], logPath, live: false, keep }, events)
    .release();
}

/** What a release leaves beside the attempt's control directory (verdict.ts): its nonce. */
function releasedBefore(dataDir: string, launch: TaskLaunch): void {
  mkdirSync(join(dataDir, "sandboxes"), { recursive: true });
  writeFileSync(`${attemptSandboxDir(dataDir, launch.taskName, launch.retryId)}.nonce`, "0123456789abcdef");
}

async function resumedRuntime(dataDir: string) {
  const runtime = new ContainerRuntime({ backend: await PodmanCliBackend.connect(), pull: "never" });
  await runtime.open({ runId: `reattach-${Date.now()}`, dataDir, keepTasks: true, resumed: true });
  return runtime;
}

describe.skipIf(!podmanWorks())("re-attaching kept containers (podman CLI, as root): the group's names", () => {
  it("answers a running attempt's group on its gateway again, and an ended one's never (its gateway may be another run's)", async () => {
    const dataDir = tempDir();
    const net = prefix();
    // Ended: its keeper recorded how (the container's end); nothing of it runs.
    const ended = launchOf(dataDir, net);
    mkdirSync(keptStateDir(dataDir, ended), { recursive: true });
    writeFileSync(join(keptStateDir(dataDir, ended), "exit"), `{"code": 0, "released": false}\n`);
    const runtime = await resumedRuntime(dataDir);
    try {
      const member = await runtime.reattach(ended);
      expect(await member!.exited).toMatchObject({ code: 0 });
      expect(await bindable(`${net}.1`)).toBe(true);
    } finally {
      await runtime.close();
    }

    // Running: released (its release's nonce beside its control directory), its keeper alive (over `sleep` here).
    const other = prefix();
    const live = { ...launchOf(dataDir, other), key: "pair/lead/1", retryId: 1 };
    const keep = keptStateDir(dataDir, live);
    startKeeper(keep, join(dataDir, "sleep.log"));
    releasedBefore(dataDir, live);
    await waitFor(() => keeperAlive(keep), "the keeper", 10_000);
    const again = await resumedRuntime(dataDir);
    try {
      expect(await again.reattach(live)).toBeDefined();
      expect(await bindable(`${other}.1`)).toBe(false);
    } finally {
      signalKept(keep, 9);
      await again.close();
    }
    expect(await bindable(`${other}.1`)).toBe(true);
  });
});

describe.skipIf(!podmanWorks())("re-attaching kept containers (podman CLI, as root): one never released", () => {
  // The process that recorded its start (RUNNING, committed before the release) was killed before it wrote "go":
  // troupe-init waits at its barrier for ever, its keeper with it, and the attempt was followed for ever.
  it("ends at once (a start error saying why), its keeper killed, and answers none of its group's names", async () => {
    const dataDir = tempDir();
    const net = prefix();
    const launch = launchOf(dataDir, net);
    const keep = keptStateDir(dataDir, launch);
    startKeeper(keep, join(dataDir, "sleep.log"));
    await waitFor(() => keeperAlive(keep), "the keeper", 10_000);
    const runtime = await resumedRuntime(dataDir);
    try {
      const member = await runtime.reattach(launch);
      expect(await member!.exited).toEqual({ code: 137, startError: "troupe ended between recording its start and releasing its command" });
      await waitFor(() => !keeperAlive(keep), "the keeper to end", 10_000);
      expect(readKeptExit(keep)).toEqual({ code: 137, released: true });
      expect(await bindable(`${net}.1`)).toBe(true);
    } finally {
      await runtime.close();
    }
  }, 30_000);
});

describe.skipIf(!podmanWorks())("re-attaching kept containers (podman CLI, as root): one podman no longer knows", () => {
  // Released, its keeper alive, but podman knows no container of its name: its `podman run` would never return (the
  // keeper here waits on `sleep`, standing for that `podman run`: a hung one cannot be had on demand).
  it("ends lost within seconds, saying so, its keeper killed", async () => {
    const dataDir = tempDir();
    const launch = launchOf(dataDir, prefix());
    const keep = keptStateDir(dataDir, launch);
    startKeeper(keep, join(dataDir, "sleep.log"));
    releasedBefore(dataDir, launch);
    await waitFor(() => keeperAlive(keep), "the keeper", 10_000);
    const runtime = await resumedRuntime(dataDir);
    try {
      const started = Date.now();
      const member = await runtime.reattach(launch);
      expect(await member!.exited).toMatchObject({
        code: 137,
        lost: expect.stringMatching(/podman no longer knows its container troupe-/),
      });
      expect(Date.now() - started).toBeLessThan(20_000);
      await waitFor(() => !keeperAlive(keep), "the keeper to end", 10_000);
    } finally {
      await runtime.close();
    }
  }, 40_000);
});
