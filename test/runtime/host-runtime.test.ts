/**
 * The host runtime on its own (as root, with bubblewrap: what CI has), below
 * the engine: output to logs with and without a live view, exit codes,
 * setup failures reported as start errors.
 */
import { homeIdentity } from "../../src/runtime/home-identity.js";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostRuntime, type TaskLaunch } from "../../src/runtime/index.js";
import { openRunNetwork } from "../../src/runtime/host/network.js";
import { spawnerPath } from "../../src/runtime/host/spawner.js";
import { bridgesOfRun, processesWith } from "../run/helpers.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function launch(dataDir: string, name: string, argv: string[], extra: Partial<TaskLaunch> = {}): TaskLaunch {
  return {
    key: `g/${name}/0`,
    taskName: name,
    groupName: "g",
    retryId: 0,
    image: "alpine",
    argv,
    env: {},
    files: [],
    outputDir: join(dataDir, "outputs", name),
    inputDirs: [],
    address: "127.1.0.9",
    hosts: { [name]: "127.1.0.9" },
    logPath: join(dataDir, "logs", `${name}.0.log`),
    ...extra,
  };
}

async function runOne(onOutput: boolean, task: (dataDir: string) => TaskLaunch) {
  // Not under /tmp: the task's /tmp is private.
  const dataDir = mkdtempSync("/var/tmp/troupe-host-");
  dirs.push(dataDir);
  const runtime = new HostRuntime({ isolation: "none", home: "/nonexistent/troupe-home" });
  const chunks: string[] = [];
  await runtime.open({ runId: "host-test-1", dataDir, onOutput: onOutput ? (_l, chunk) => chunks.push(chunk.toString()) : undefined });
  try {
    const member = await runtime.prepare(task(dataDir));
    member.release();
    return { exit: await member.exited, chunks, log: () => readFileSync(task(dataDir).logPath, "utf8") };
  } finally {
    await runtime.close();
  }
}

describe("host runtime", () => {
  it.each([true, false])("writes stdout and stderr completely to the log (live view: %s) and reports the exit code", async (live) => {
    const r = await runOne(live, (d) => launch(d, "talker", ["sh", "-c", "echo out; echo err >&2; exit 7"]));
    expect(r.exit).toEqual({ code: 7 });
    expect(r.log()).toContain("out\n");
    expect(r.log()).toContain("err\n");
    expect(r.chunks.join("")).toBe(live ? r.log() : "");
  });

  it("reports a signal as 128 + its number", async () => {
    const r = await runOne(false, (d) => launch(d, "killed", ["sh", "-c", "kill -TERM $$"]));
    expect(r.exit.code).toBe(143);
  });

  describe("prepared with releaseWhenReady (a group of one)", () => {
    async function opened() {
      const dataDir = mkdtempSync("/var/tmp/troupe-host-");
      dirs.push(dataDir);
      const runtime = new HostRuntime({ isolation: "none", home: "/nonexistent/troupe-home" });
      await runtime.open({ runId: "host-test-at-once", dataDir });
      return { dataDir, runtime };
    }

    it("starts the command as its sandbox comes up: it runs to its end with no release; the release after changes nothing", async () => {
      const { dataDir, runtime } = await opened();
      try {
        const task = launch(dataDir, "quick", ["sh", "-c", "echo ran; exit 5"]);
        const member = await runtime.prepare(task, { releaseWhenReady: true });
        expect(await member.exited).toEqual({ code: 5 });
        member.release();
        expect(readFileSync(task.logPath, "utf8")).toBe("ran\n");
      } finally {
        await runtime.close();
      }
    });

    it("reports a sandbox that cannot be set up as the same start error as a member released after its ready", async () => {
      const { dataDir, runtime } = await opened();
      const broken = (name: string) =>
        launch(dataDir, name, ["true"], {
          mounts: [{ source: join(dataDir, "no-such-source"), target: "/var/tmp/troupe-no-target", readOnly: true }],
        });
      try {
        const atOnce = await runtime.prepare(broken("at-once"), { releaseWhenReady: true });
        const released = await runtime.prepare(broken("released"));
        released.release();
        const [a, b] = [await atOnce.exited, await released.exited];
        expect(a).toEqual({ code: 1, startError: expect.stringMatching(/^sandbox setup failed: .*no-such-source/) });
        expect(a).toEqual({ ...b, startError: b.startError!.replaceAll("released", "at-once") });
      } finally {
        await runtime.close();
      }
      expect(existsSync("/var/tmp/troupe-no-target")).toBe(false);
    });

    it("is stopped as any member: a stop before the engine's release ends it as not started, and leaves nothing running", async () => {
      const { dataDir, runtime } = await opened();
      const sleep = `1234.${process.pid}${Math.floor(Math.random() * 1e6)}`;
      try {
        const member = await runtime.prepare(launch(dataDir, "sleeper", ["sleep", sleep]), { releaseWhenReady: true });
        await member.stop(0);
        expect(await member.exited).toMatchObject({ startError: "stopped before its command started" });
        expect(processesWith(sleep)).toEqual([]);
      } finally {
        await runtime.close();
      }
    });
  });

  it("refuses a file whose top-level directory does not exist, before anything runs", async () => {
    const dataDir = mkdtempSync("/var/tmp/troupe-host-");
    dirs.push(dataDir);
    const runtime = new HostRuntime({ isolation: "none", home: "/nonexistent/troupe-home" });
    await runtime.open({ runId: "host-test-2", dataDir });
    const task = launch(dataDir, "placer", ["true"], { files: [{ path: "/no-such-top-level-dir-x/a.conf", contents: Buffer.from("x") }] });
    await expect(runtime.prepare(task)).rejects.toThrow(/top-level directory does not exist/);
    await runtime.close();
    expect(existsSync("/no-such-top-level-dir-x")).toBe(false);
  });

  // A server opens a runtime per run: one troupe-spawner for all of them, which one run's end does not take away.
  it.skipIf(spawnerPath() === undefined)(
    "runtimes of one process share one troupe-spawner; closing one leaves the others' tasks running; a dead one is replaced",
    async () => {
      const dataDir = mkdtempSync("/var/tmp/troupe-host-");
      dirs.push(dataDir);
      const spawners = () =>
        readdirSync("/proc")
          .filter((pid) => /^\d+$/.test(pid))
          .filter((pid) => {
            try {
              const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
              return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid && stat.includes("(troupe-spawner)");
            } catch {
              return false;
            }
          });
      const first = new HostRuntime({ isolation: "none", home: "/nonexistent/troupe-home" });
      const second = new HostRuntime({ isolation: "none", home: "/nonexistent/troupe-home" });
      await first.open({ runId: "host-shared-1", dataDir: join(dataDir, "1") });
      await second.open({ runId: "host-shared-2", dataDir: join(dataDir, "2") });
      const long = await first.prepare(launch(join(dataDir, "1"), "long", ["sh", "-c", "sleep 0.5; echo done"]));
      const short = await second.prepare(launch(join(dataDir, "2"), "short", ["true"]));
      expect(spawners()).toHaveLength(1);
      long.release();
      short.release();
      expect(await short.exited).toEqual({ code: 0 });
      await second.close();
      expect(await long.exited).toEqual({ code: 0 });
      expect(readFileSync(join(dataDir, "1", "logs", "long.0.log"), "utf8")).toBe("done\n");

      // Should the helper die, the next attempt (of a runtime that used it too) has a new one.
      const [helper] = spawners();
      process.kill(Number(helper), "SIGKILL");
      for (let i = 0; i < 100 && spawners().includes(helper!); i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50)); // its end is read by the client
      const after = await first.prepare(launch(join(dataDir, "1"), "after", ["true"]));
      after.release();
      expect(await after.exited).toEqual({ code: 0 });
      expect(spawners()).toHaveLength(1);
      expect(spawners()).not.toContain(helper);
      await first.close();
    },
  );
});

describe.skipIf(process.getuid?.() !== 0 || spawnerPath() === undefined)("a resumed run's network (as root)", () => {
  it("removes the bridges an earlier server opened for the run that no member is on, before opening its own", async () => {
    const dataDir = mkdtempSync("/var/tmp/troupe-host-");
    dirs.push(dataDir);
    const runId = `host-resumed-${process.pid}-${Date.now().toString(36)}`;
    // What the last server left: the run's bridge (keyed as a kept run's), its members gone.
    const home = "/nonexistent/troupe-home";
    const earlier = await openRunNetwork(`kept.${homeIdentity(home)}.${runId}`);
    const runtime = new HostRuntime({ isolation: "netns", home });
    try {
      await runtime.open({ runId, dataDir, keepTasks: true, resumed: true });
      const bridges = bridgesOfRun(runId);
      expect(bridges).not.toContain(earlier.bridge);
      expect(bridges).toHaveLength(1);
    } finally {
      await runtime.close();
      await earlier.close();
    }
    expect(bridgesOfRun(runId)).toEqual([]);
  });
});
