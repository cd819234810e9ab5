/**
 * The chaos pool (chaos-pool.ts) over the host runtime. With no faults
 * scripted it passes the port's conformance suite as its inner pool does;
 * with faults, each is reported as such, exactly once (the suite's probe
 * checks that in every case), and the real member a fault hits is stopped.
 */
import { existsSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { MemberOutcome } from "../../src/port/index.js";
import { bridgesOfRun, IS_ROOT, processesWith } from "../run/helpers.js";
import { BACKENDS } from "./backends.js";
import { ChaosPool, evicted, exitsWith, lost, preempted, type ScriptedEnd } from "./chaos-pool.js";
import { sh } from "./group-probe.js";
import { describeConformance } from "./port.conformance.js";
import { useRuns } from "./runs.js";
import { pause } from "./target.js";

describe.runIf(IS_ROOT)("the chaos pool over the host runtime (as root)", () => {
  describeConformance({
    name: "chaos pool with no faults, over the host",
    backend: "chaos-host",
    make: BACKENDS["chaos-host"],
    image: "alpine:3.18",
    missingBinary: "exit-127",
    leftovers: bridgesOfRun,
  });

  describe("faults as scripted", { timeout: 60_000 }, () => {
    let chaos: ChaosPool;
    beforeAll(async () => {
      chaos = new ChaosPool(await BACKENDS["host-spawner"](), {}, { placement: "cluster" });
    }, 120_000);
    afterEach(() => {
      expect(chaos.violations.splice(0)).toEqual([]);
    });
    const openRun = useRuns(() => chaos, "alpine:3.18");
    it("finds an attempt's script by its key, then `group/task`, then `task`", () => {
      const script = { "g/t/1": { neverPlaced: true }, "g/t": { placeAfterMs: 5 }, t: { placeAfterMs: 9 } };
      const scripted = new ChaosPool(chaos, script);
      expect(scripted.scriptOf("g/t/1")).toEqual({ neverPlaced: true });
      expect(scripted.scriptOf("g/t/0")).toEqual({ placeAfterMs: 5 });
      expect(scripted.scriptOf("h/t/0")).toEqual({ placeAfterMs: 9 });
      expect(scripted.scriptOf("h/u/0")).toEqual({});
    });

    const marker = () => `0.1${Math.floor(Math.random() * 1e6)}`;

    it("places members late and in the order their delays give, each once, none before its delay; the group then runs", async () => {
      chaos.script = { "late/a": { placeAfterMs: 600 }, "late/b": { placeAfterMs: 100 }, "late/c": { placeAfterMs: 350 } };
      expect(chaos.capabilities.placement).toBe("cluster");
      const g = (await openRun()).group("late", ["a", "b", "c"]);
      const asked = Date.now();
      const keys = g.place();
      await g.placedAll(keys);
      expect(g.events).toEqual(["placed late/b/0", "placed late/c/0", "placed late/a/0"]);
      for (const [task, delay] of [
        ["a", 600],
        ["b", 100],
        ["c", 350],
      ] as const)
        expect(g.placedAt.get(g.key(task))! - asked).toBeGreaterThanOrEqual(delay);
      g.prepare({ a: sh("exit 0"), b: sh("exit 0"), c: sh("exit 0") });
      await g.readyAll(keys);
      await g.handle.release(keys);
      for (const key of keys) expect(await g.exit(key)).toEqual({ kind: "exited", code: 0 });
    });

    it("leaves a member that is never placed pending; stopped, it ends once", async () => {
      chaos.script = { "pending/stuck": { neverPlaced: true } };
      const g = (await openRun()).group("pending", ["stuck", "fine"]);
      const [stuck, fine] = g.place() as [string, string];
      await g.placedAll([fine]);
      await pause(400);
      expect(g.placements.has(stuck)).toBe(false);
      await g.handle.stop(stuck, 0);
      expect(await g.exit(stuck)).toMatchObject({ kind: "start-failed", message: expect.stringMatching(/waiting to be placed/) });
    });

    const ends: Array<[string, ScriptedEnd]> = [
      ["lost", lost(300)],
      ["evicted", evicted(300)],
      ["preempted", preempted(300)],
      ["exited with a code and a reason", exitsWith(300, 42, "OOMKilled")],
    ];
    it.each(ends)("reports a running member %s as scripted, once, with the real member stopped; its sibling runs on", async (_, end) => {
      const group = `hit-${Math.random().toString(36).slice(2, 8)}`;
      chaos.script = { [`${group}/victim`]: { end } };
      const g = (await openRun()).group(group, ["victim", "sibling"]);
      const running = marker();
      const [victim, sibling] = await g.started({
        victim: sh(`echo up; while :; do sleep ${running}; done`),
        sibling: sh("sleep 1; exit 0"),
      });
      expect(await g.exit(victim!)).toEqual<MemberOutcome>(end.outcome);
      expect(processesWith(running)).toEqual([]);
      expect(await g.exit(sibling!)).toEqual({ kind: "exited", code: 0 });
    });

    it("fails a release: it rejects saying why, every member of it ends once, and no command runs", async () => {
      chaos.script = { "refused/b": { failRelease: "chaos: the cluster would not start the group" } };
      const g = (await openRun()).group("refused", ["a", "b"]);
      const mark = sh(({ output }) => `touch ${output}/ran`);
      const keys = await g.upToReady({ a: mark, b: mark });
      await expect(g.handle.release(keys)).rejects.toThrow("chaos: the cluster would not start the group");
      for (const key of keys) expect((await g.exit(key)).kind).not.toBe("exited");
      await pause(200);
      expect(["a", "b"].filter((task) => existsSync(`${g.launch(task, mark).outputDir}/ran`))).toEqual([]);
    });

    it("reports start-timeout for a member that never becomes ready, once, with no `ready` before it", async () => {
      chaos.script = { "slow/sluggish": { startTimeoutAfterMs: 300 } };
      const g = (await openRun()).group("slow", ["sluggish"]);
      const [key] = g.place();
      await g.placedAll([key!]);
      g.prepare({ sluggish: sh("exit 0") });
      expect(await g.exit(key!)).toMatchObject({ kind: "start-timeout" });
      expect(g.readyKeys.size).toBe(0);
    });

    it("records what an engine does out of the port's order: a prepare before `placed`, a release before `ready`", async () => {
      chaos.script = { "hasty/a/1": { placeAfterMs: 400 } };
      const g = (await openRun()).group("hasty", ["a"]);
      await g.placedAll(g.place());
      // The next attempt lands where the first did (this pool's groups keep their addresses): its launch is known early.
      const [next] = g.place(["a"], 1);
      const early = { ...g.launch("a", sh("exit 0")), key: next!, retryId: 1, logPath: `${g.launch("a", sh("")).logPath}.1` };
      g.handle.prepare(early);
      await g.handle.release([next!]);
      expect(chaos.violations.splice(0)).toEqual([`prepare before placed: ${next}`, `release before ready: ${next}`]);
      await g.readyAll([next!]);
      await g.handle.release([next!]);
      expect(await g.exit(next!)).toEqual({ kind: "exited", code: 0 });
    });
  });
});
