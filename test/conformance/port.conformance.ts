/**
 * The runtime port's conformance suite: what every PoolBackend must do,
 * written against the port alone (src/port) and run against each runtime by
 * a *.conformance.test.ts file of this folder. Each case is short and drives
 * one group as the engine would (group-probe.ts), which also checks in every
 * case that no event comes for an unknown key, that `exited` comes exactly
 * once, and that nothing comes after it. A case a runtime cannot do by its
 * capabilities is skipped by the case itself, with the reason printed.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import type { PoolBackend } from "../../src/port/index.js";
import { processesWith } from "../run/helpers.js";
import { readAll, sh } from "./group-probe.js";
import { describeDeadSessions } from "./port.dead-sessions.js";
import { describeMemberView } from "./port.member-view.js";
import { useRuns } from "./runs.js";
import { outputOf, outputWithin, pause, skipWhereCannot, type ConformanceTarget } from "./target.js";

export type { ConformanceTarget } from "./target.js";

/**
 * A shell test that `{{host:X}}` resolves from a member: a name must resolve by DNS; an address (what
 * pools without names give, as the port allows: Slurm's members are their nodes' addresses) is one already.
 */
const resolves = (host: string) => (isIP(host) ? "true" : `busybox nslookup ${host} > /dev/null`);

export function describeConformance(target: ConformanceTarget): void {
  // Containers take a second or two to start, and the machine may be busy: an event's wait (20 s) fails first, naming it.
  describe(`the runtime port: ${target.name}`, { timeout: 60_000 }, () => {
    let pool: PoolBackend;

    beforeAll(async () => {
      pool = await target.make();
      console.log(`${target.name}: ${pool.describe()}; capabilities ${JSON.stringify(pool.capabilities)}`);
    }, 120_000);

    afterAll(() => target.dispose?.(), 60_000);

    const openRun = useRuns(() => pool, target.image);

    const skipUnless = (ctx: TestContext, can: boolean, reason: string) => {
      if (can) return;
      console.log(`skipped for ${target.name}: ${reason}`);
      ctx.skip(reason);
    };
    /** A case about what a command does (its output, exit code, signals, network): skipped where none runs. */
    const needsCommands = (ctx: TestContext) => skipWhereCannot(skipUnless, ctx, target, "commands");

    it("places every member of a group of 3, each with an address of its own and a host name, and nothing more before prepare", async () => {
      const g = (await openRun()).group("trio", ["a", "b", "c"]);
      const placements = await g.placedAll(g.place());
      expect(new Set(placements.map((p) => p.address)).size).toBe(3);
      for (const p of placements) {
        expect(p.address).not.toBe("");
        expect(p.hostName).not.toBe("");
      }
      await pause(200);
      expect(g.events.filter((e) => !e.startsWith("placed "))).toEqual([]);
    });

    it("prepares every member (ready) and starts no command before the release", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("barrier", ["a", "b", "c"]);
      const mark = sh(({ output }) => `echo ran; touch ${output}/ran`);
      const keys = await g.upToReady({ a: mark, b: mark, c: mark });
      // Held: nothing printed, nothing written, nothing ended.
      for (const key of keys) expect(await outputWithin(g.handle, key, 300)).toBe("");
      const ran = ["a", "b", "c"].map((task) => `${g.launch(task, mark).outputDir}/ran`);
      const shared = pool.capabilities.sharedFileSystem;
      if (shared) expect(ran.filter(existsSync)).toEqual([]);
      expect(g.outcomes.size).toBe(0);
      const releasedAt = Date.now();
      await g.handle.release(keys);
      for (const key of keys) expect(await g.exit(key)).toEqual({ kind: "exited", code: 0 });
      for (const key of keys) expect((await readAll(g.handle.logs(key))).text).toBe("ran\n");
      // Written after the release (the kernel's clock for file times is coarse: a few ms).
      if (shared) for (const file of ran) expect(statSync(file).mtimeMs).toBeGreaterThanOrEqual(releasedAt - 20);
    });

    it("prepares a group of one with releaseWhenReady: `ready` before `exited`, the command runs once, the engine's release after changes nothing", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("alone", ["alone"]);
      const [key] = g.place();
      await g.placedAll([key!]);
      const counted = sh(({ output }) => `echo ran; echo x >> ${output}/runs`);
      const launch = g.launch("alone", counted);
      // As the engine does: the release as soon as it is ready (a runtime may have started the command already).
      g.handle.prepare(launch, { releaseWhenReady: true });
      await g.until("ready or exited", () => (g.readyKeys.has(key!) || g.outcomes.has(key!) ? true : undefined));
      expect(g.readyKeys.has(key!)).toBe(true);
      await g.handle.release([key!]);
      expect(await g.exit(key!)).toEqual({ kind: "exited", code: 0 });
      expect((await readAll(g.handle.logs(key!))).text).toBe("ran\n");
      if (pool.capabilities.sharedFileSystem) expect(readFileSync(`${launch.outputDir}/runs`, "utf8")).toBe("x\n");
    });

    it("members reach each other by their {{host:X}} names: the name resolves and connects from a sibling", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("pair", ["server", "client", "watcher"]);
      const port = 20_000 + Math.floor(Math.random() * 20_000);
      const keys = await g.started({
        server: sh(`echo hello | busybox nc -l -p ${port}`),
        client: sh(
          ({ hosts }) => `n=0; until ${resolves(hosts.server!)}; do n=$((n+1)); [ $n -lt 50 ] || exit 3; sleep 0.2; done
for i in $(seq 1 25); do got=$(busybox nc -w 3 ${hosts.server} ${port} 2>/dev/null) && [ -n "$got" ] && break; sleep 0.2; done
echo "got=$got"; [ "$got" = hello ]`,
        ),
        watcher: sh(({ hosts }) => `${resolves(hosts.client!)} && echo resolved`),
      });
      const [server, client, watcher] = keys as [string, string, string];
      expect(await g.exit(client)).toEqual({ kind: "exited", code: 0 });
      expect(await g.exit(server)).toEqual({ kind: "exited", code: 0 });
      expect(await g.exit(watcher)).toEqual({ kind: "exited", code: 0 });
      expect((await readAll(g.handle.logs(client))).text).toContain("got=hello\n");
      expect((await readAll(g.handle.logs(watcher))).text).toBe("resolved\n");
    });

    it("reports exit codes exactly: 0, 3, and 137 for a command killed by SIGKILL", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("codes", ["zero", "three", "killed"]);
      const [zero, three, killed] = await g.started({ zero: sh("exit 0"), three: sh("exit 3"), killed: sh("kill -KILL $$") });
      expect(await g.exit(zero!)).toEqual({ kind: "exited", code: 0 });
      expect(await g.exit(three!)).toEqual({ kind: "exited", code: 3 });
      expect(await g.exit(killed!)).toMatchObject({ kind: "exited", code: 137 });
    });

    it("runs a fresh attempt of a member (a retry) as the first: placed, prepared, released, ended, with a log of its own, its siblings' names resolving", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("retry", ["worker", "peer"]);
      const [first, peer] = await g.started({ worker: sh("echo try-0; exit 3"), peer: sh("sleep 30") });
      expect(await g.exit(first!)).toEqual({ kind: "exited", code: 3 });
      const [second] = g.place(["worker"], 1);
      const [placement] = await g.placedAll([second!]);
      expect(placement!.address).not.toBe("");
      // Its sibling's name still resolves from the new attempt.
      g.handle.prepare(
        g.launch(
          "worker",
          sh(({ hosts }) => `${resolves(hosts.peer!)} && echo try-1`),
          1,
        ),
      );
      await g.readyAll([second!]);
      await g.handle.release([second!]);
      expect(await g.exit(second!)).toEqual({ kind: "exited", code: 0 });
      expect((await readAll(g.handle.logs(first!))).text).toBe("try-0\n");
      expect((await readAll(g.handle.logs(second!))).text).toBe("try-1\n");
      expect(g.outcomes.has(peer!)).toBe(false);
      await g.handle.stop(peer!, 0);
    });

    it("reports a command that cannot be started (a missing binary) as such, once", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("missing", ["lost"]);
      const [key] = g.place();
      await g.placedAll([key!]);
      g.prepare({ lost: () => ["/nonexistent/troupe-conformance-no-such-binary"] });
      // Some runtimes find out while preparing, others only when the command is let start.
      await g.until("ready or exited", () => (g.readyKeys.has(key!) || g.outcomes.has(key!) ? true : undefined));
      if (!g.outcomes.has(key!)) await g.handle.release([key!]).catch(() => undefined);
      const outcome = await g.exit(key!);
      if (target.missingBinary === "exit-127") expect(outcome).toEqual({ kind: "exited", code: 127 });
      else expect(outcome).toMatchObject({ kind: "start-failed", message: expect.any(String) });
    });

    it("checks images where it runs them (one it has is ready, one it cannot have is refused and its member ends image-pull); where it runs none, that member runs all the same", async (ctx) => {
      needsCommands(ctx);
      const { session, group } = await openRun();
      const missing = `localhost/troupe-conformance/no-such-image:${Math.random().toString(36).slice(2, 10)}`;
      const g = group("imageless", ["m"]);
      const [key] = g.place();
      await g.placedAll([key!]);
      if (session.ensureImage) {
        await session.ensureImage(target.image);
        await expect(session.ensureImage(missing)).rejects.toThrow();
        g.handle.prepare(g.launch("m", sh("exit 0"), 0, { image: missing }));
        expect(await g.exit(key!)).toMatchObject({ kind: "image-pull", message: expect.any(String) });
        return;
      }
      if (target.imagesWherePrepared) {
        g.handle.prepare(g.launch("m", sh("exit 0"), 0, { image: missing }));
        expect(await g.exit(key!)).toMatchObject({ kind: "image-pull", message: expect.stringContaining(missing) });
        return;
      }
      // A pool without ensureImage stands in for images (the host runtime, and its sandbox on Slurm's nodes).
      g.handle.prepare(g.launch("m", sh("exit 0"), 0, { image: missing }));
      await g.readyAll([key!]);
      await g.handle.release([key!]);
      expect(await g.exit(key!)).toEqual({ kind: "exited", code: 0 });
    });

    it("stops a member politely (its SIGTERM handler runs) and, one that ignores it, by force after the grace; `exited` follows", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("stops", ["polite", "stubborn"]);
      const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
      const [polite, stubborn] = await g.started({
        polite: sh(`trap 'echo stopping; exit 7' TERM; echo up; while :; do sleep ${marker}; done`),
        stubborn: sh(`trap '' TERM; echo up; while :; do sleep ${marker}; done`),
      });
      await outputOf(g.handle, polite!, "up\n");
      await outputOf(g.handle, stubborn!, "up\n");
      await Promise.all([g.handle.stop(polite!, 20_000), g.handle.stop(stubborn!, 500)]);
      // Resolved: nothing of either is left.
      expect(processesWith(marker)).toEqual([]);
      expect(await g.exit(polite!)).toEqual({ kind: "exited", code: 7 });
      expect(await g.exit(stubborn!)).toMatchObject({ kind: "exited", code: 137 });
      expect((await readAll(g.handle.logs(polite!))).text).toBe("up\nstopping\n");
    });

    it("ends a member stopped while it is being prepared: `exited` follows, no `ready`, its command never runs", async () => {
      const g = (await openRun()).group("halted", ["preparing"]);
      const [key] = g.place();
      await g.placedAll([key!]);
      const marked = sh(({ output }) => `touch ${output}/ran; sleep 30`);
      g.prepare({ preparing: marked });
      await g.handle.stop(key!, 0);
      // Not `exited` with a code: no command ran (which outcome it is, the engine does not need: it stopped it).
      expect((await g.exit(key!)).kind).not.toBe("exited");
      await pause(300);
      expect(g.readyKeys.size).toBe(0);
      if (pool.capabilities.sharedFileSystem) expect(existsSync(`${g.launch("preparing", marked).outputDir}/ran`)).toBe(false);
    });

    it("ends a ready member stopped before its release: `exited` follows, not as a command's exit code, and no command ran", async () => {
      const g = (await openRun()).group("held", ["held", "other"]);
      const marked = sh(({ output }) => `echo ran; touch ${output}/ran`);
      const [held, other] = await g.upToReady({ held: marked, other: marked });
      await g.handle.stop(held!, 0);
      expect((await g.exit(held!)).kind).not.toBe("exited");
      expect(await outputWithin(g.handle, held!, 100)).toBe("");
      if (pool.capabilities.sharedFileSystem) expect(existsSync(`${g.launch("held", marked).outputDir}/ran`)).toBe(false);
      // Its sibling is still held, and runs once released.
      await g.handle.release([other!]);
      expect(await g.exit(other!)).toEqual({ kind: "exited", code: 0 });
    });

    it("ends a member placed but never prepared when it is stopped: `exited` follows", async () => {
      const g = (await openRun()).group("unprepared", ["placed", "other"]);
      const keys = g.place();
      await g.placedAll(keys);
      await g.handle.stop(keys[0]!, 0);
      expect((await g.exit(keys[0]!)).kind).not.toBe("exited");
      expect(g.outcomes.has(keys[1]!)).toBe(false);
    });

    it("streams a member's complete output (stdout and stderr) from logs(key): while it runs, and whole once it has ended", async (ctx) => {
      needsCommands(ctx);
      const g = (await openRun()).group("talk", ["talker"]);
      const [key] = await g.started({ talker: sh("for i in 1 2 3 4 5; do echo line-$i; sleep 0.3; done; echo err >&2") });
      const live = await readAll(g.handle.logs(key!));
      const expected = "line-1\nline-2\nline-3\nline-4\nline-5\nerr\n";
      expect(live.text).toBe(expected);
      await g.exit(key!);
      // Read while it ran: the first line came before the attempt ended.
      expect(live.chunks[0]!.at).toBeLessThan(g.exitedAt.get(key!)!);
      expect((await readAll(g.handle.logs(key!))).text).toBe(expected);
      if (pool.capabilities.localLogs) expect(readFileSync(g.launch("talker", sh("")).logPath, "utf8")).toBe(expected);
    });

    it("restarts a member in place where it can: the command again, the sandbox's files kept, after the next release", async (ctx) => {
      const g = (await openRun()).group("again", ["again"]);
      const count = "n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/count; echo run-$n; sleep 30";
      const [key] = await g.started({ again: sh(count) });
      skipUnless(ctx, g.handle.canRestart(key!), "canRestart is false: the engine gives such members fresh attempts");
      await outputOf(g.handle, key!, "run-1\n");
      expect(await g.restart(key!, 200)).toBe(true);
      expect(g.outcomes.has(key!)).toBe(false);
      await g.handle.release([key!]);
      await outputOf(g.handle, key!, "run-2\n");
      await g.handle.stop(key!, 0);
      expect(await g.exit(key!)).toMatchObject({ kind: "exited" });
      // Ended: nothing to restart any more.
      expect(await g.handle.restart(key!, 0)).toBe(false);
    });

    it("reports `exited` exactly once however often a member is stopped, and close() may be called twice", async (ctx) => {
      needsCommands(ctx);
      const { session, group } = await openRun();
      const g = group("once", ["sleeper", "quick"]);
      const [sleeper, quick] = await g.started({ sleeper: sh("sleep 30"), quick: sh("exit 0") });
      await g.exit(quick!);
      await Promise.all([g.handle.stop(sleeper!, 0), g.handle.stop(sleeper!, 0), g.handle.stop(quick!, 0)]);
      await g.exit(sleeper!);
      await g.handle.close();
      await g.handle.close();
      await session.close();
      await session.close();
      await pause(300);
      expect(g.events.filter((e) => e.startsWith("exited "))).toHaveLength(2);
    });

    describeMemberView(() => pool, openRun, target, skipUnless);
    describeDeadSessions(target, () => pool, openRun, skipUnless);
  });
}
