/**
 * The host runtime's names across a server restart (as root, troupe-spawner
 * keeping tasks): a member whose run is resumed by another troupe process
 * goes on resolving its group's names, which the earlier process's name
 * server answered (netns: on the earlier bridge's gateway; shared network:
 * on the loopback address that follows from the run's data directory).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostRuntime, type TaskLaunch } from "../../src/runtime/index.js";
import { spawnerPath } from "../../src/runtime/host/spawner.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The log's lines once `done` holds for them (or what there is after `timeoutMs`). */
async function logUntil(path: string, done: (lines: string[]) => boolean, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let lines: string[] = [];
    try {
      lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
    } catch {
      // not written yet
    }
    if (done(lines) || Date.now() > deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(process.getuid?.() !== 0 || spawnerPath() === undefined)("names of a resumed run (as root)", () => {
  it.each(["netns", "none"] as const)(
    "a re-attached member resolves its group's names again (%s)",
    async (isolation) => {
      const dataDir = mkdtempSync("/var/tmp/troupe-host-");
      dirs.push(dataDir);
      const runId = `host-names-${process.pid}-${Date.now().toString(36)}`;
      const first = new HostRuntime({ isolation, home: "/nonexistent/troupe-home" });
      await first.open({ runId, dataDir, keepTasks: true });
      const hosts = await first.addresses(["asker", "peer"]);
      const script =
        "i=0; while true; do i=$((i+1)); busybox nslookup peer.g.troupe.internal >/dev/null 2>&1 && echo ok || echo fail; sleep 0.1; done";
      const launch: TaskLaunch = {
        key: "g/asker/0",
        taskName: "asker",
        groupName: "g",
        retryId: 0,
        image: "alpine",
        argv: ["sh", "-c", script],
        env: {},
        files: [],
        outputDir: join(dataDir, "outputs", "asker"),
        inputDirs: [],
        address: hosts.asker!,
        hosts,
        logPath: join(dataDir, "logs", "asker.0.log"),
      };
      const member = await first.prepare(launch);
      member.release();
      let second: HostRuntime | undefined;
      try {
        expect(await logUntil(launch.logPath, (l) => l.includes("ok"))).toContain("ok");
        // The first process "dies": its name server goes (its kept task stays).
        await (first as unknown as { names: { close(): Promise<void> } }).names.close();
        const failing = await logUntil(launch.logPath, (l) => l.at(-1) === "fail");
        expect(failing.at(-1)).toBe("fail");
        second = new HostRuntime({ isolation, home: "/nonexistent/troupe-home" });
        await second.open({ runId, dataDir, keepTasks: true, resumed: true });
        const again = await second.reattach(launch);
        expect(again).toBeDefined();
        const lines = await logUntil(launch.logPath, (l) => l.at(-1) === "ok");
        expect(lines.at(-1)).toBe("ok");
      } finally {
        await second?.close();
        await first.close();
      }
    },
    40_000,
  );
});
