/**
 * The conformance cases about a troupe that died mid-run: a child process
 * (dead-session-child.ts, run by vite-node) makes the same pool, starts a
 * group and is killed (SIGKILL) once every member runs; then this process,
 * as the next troupe, re-attaches what outlived it or sweeps what it left.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import type { PoolBackend, RunContext } from "../../src/port/index.js";
import { processesWith, random, ROOT, waitFor } from "../run/helpers.js";
import type { DeadSessionOrder, DeadSessionReport } from "./dead-session-child.js";
import { outputDirOf, readAll, sh } from "./group-probe.js";
import { skipWhereCannot, type ConformanceTarget, type OpenRun, type SkipUnless } from "./target.js";

const CHILD = join(ROOT, "test", "conformance", "dead-session-child.ts");
const VITE_NODE = join(ROOT, "node_modules", ".bin", "vite-node");

export function describeDeadSessions(target: ConformanceTarget, pool: () => PoolBackend, openRun: OpenRun, skipUnless: SkipUnless): void {
  const children = new Set<ChildProcess>();
  const dirs: string[] = [];
  afterAll(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** A run started by a troupe (the child) that is then killed: its group's id and launches. */
  async function abandonedRun(run: RunContext, group: string, commands: Record<string, string[]>): Promise<DeadSessionReport> {
    const order: DeadSessionOrder = { backend: target.backend, image: target.image, run, group, commands };
    const child = spawn(VITE_NODE, [CHILD], {
      cwd: ROOT,
      env: { ...process.env, TROUPE_CONFORMANCE_ORDER: JSON.stringify(order) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const report = await new Promise<DeadSessionReport>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the dead-session child did not start its group within 90 s:\n${stderr}`)), 90_000);
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        if (!stdout.includes("\n")) return;
        clearTimeout(timer);
        resolve(JSON.parse(stdout.split("\n")[0]!) as DeadSessionReport);
      });
      child.on(
        "exit",
        (code, signal) => (clearTimeout(timer), reject(new Error(`the dead-session child ended (${code ?? signal}):\n${stderr}`))),
      );
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    return report;
  }

  const freshRun = (extra: Partial<RunContext> = {}): RunContext => {
    const dataDir = mkdtempSync("/var/tmp/troupe-conf-dead-");
    chmodSync(dataDir, 0o755);
    dirs.push(dataDir);
    return { runId: `conf-dead-${random()}`, dataDir, ...extra };
  };

  it(
    "re-attaches a kept member after the troupe that started it died, reports its end and gives its whole output",
    { timeout: 180_000 },
    async (ctx) => {
      skipWhereCannot(skipUnless, ctx, target, "commands");
      skipUnless(
        ctx,
        pool().capabilities.tasksOutliveTroupe,
        "tasksOutliveTroupe is false: its tasks end with the troupe that started them",
      );
      const run = freshRun({ keepTasks: true });
      const go = join(outputDirOf(run, "kept", "survivor"), "go");
      const script = `echo begun; while [ ! -e ${go} ]; do sleep 0.1; done; echo done; exit 5`;
      const report = await abandonedRun(run, "kept", { survivor: ["sh", "-c", script] });
      const launch = report.launches[0]!;

      const g = (await openRun({ ...run, resumed: true })).group("kept", ["survivor"], report.id);
      expect(await g.reattach(launch)).toBe(true);
      expect(g.outcomes.has(launch.key)).toBe(false);
      writeFileSync(go, "");
      expect(await g.exit(launch.key)).toEqual({ kind: "exited", code: 5 });
      expect((await readAll(g.handle.logs(launch.key))).text).toBe("begun\ndone\n");
      // An attempt that was never started: its fate cannot be known.
      const never = { ...launch, key: "kept/survivor/1", retryId: 1, logPath: `${launch.logPath}.never` };
      expect(await g.reattach(never)).toBe(false);
    },
  );

  it(
    "sweep removes what a session whose troupe died left, and leaves a live session's members running",
    { timeout: 180_000 },
    async (ctx) => {
      // The dead troupe's members must print "begun" before it is killed.
      skipWhereCannot(skipUnless, ctx, target, "commands");
      const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
      const run = freshRun();
      await abandonedRun(run, "left", { orphan: ["sh", "-c", `echo begun; while :; do sleep ${marker}; done`] });

      const live = (await openRun()).group("alive", ["living"]);
      const [living] = await live.started({ living: sh("sleep 60") });
      const before = target.leftovers?.(run.runId) ?? [];
      const removed = await pool().sweep();
      // Nothing of the dead run runs or is held any more.
      expect(
        await waitFor(
          () => processesWith(marker),
          (p) => p.length === 0,
          20_000,
        ),
      ).toEqual([]);
      expect(target.leftovers?.(run.runId) ?? []).toEqual([]);
      if (before.length > 0) expect(removed).not.toEqual([]);
      // A sweep twice removes nothing more of it.
      expect((await pool().sweep()).filter((r) => r.includes(run.runId))).toEqual([]);
      expect(live.outcomes.has(living!)).toBe(false);
      await live.handle.stop(living!, 0);
      await live.exit(living!);
    },
  );
}
