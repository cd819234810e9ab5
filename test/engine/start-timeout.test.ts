/**
 * The start timeout (src/engine/start-deadline.ts): a member whose sandbox is not up this long after its
 * prepare ends FAILED_START_TIMEOUT (3005) and is stopped; one that comes up in time is not touched, and no
 * timer is left behind. A port-level fake group whose members named in `hang` never come up, as a runtime
 * whose `podman run` never returns; real podman's side is in test/run/container-start-timeout.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { GroupHandle, GroupListener, GroupRef, MemberRef, TaskLaunch } from "../../src/port/index.js";
import { flush, InertGroupParts, startOnFakeGroups } from "./fakes.js";

class HangingGroup extends InertGroupParts implements GroupHandle {
  readonly id: string;
  constructor(
    group: GroupRef,
    private readonly listener: GroupListener,
    private readonly hang: ReadonlySet<string>,
    private readonly stops: string[],
  ) {
    super();
    this.id = group.name;
  }
  place(members: readonly MemberRef[]): void {
    queueMicrotask(() => members.forEach((m, i) => this.listener.placed(m.key, { address: `10.0.0.${i + 1}`, hostName: m.taskName })));
  }
  prepare(launch: TaskLaunch): void {
    if (this.hang.has(launch.taskName)) return; // its sandbox never comes up
    queueMicrotask(() => this.listener.ready(launch.key));
  }
  async release(keys: readonly string[]): Promise<void> {
    for (const key of keys) queueMicrotask(() => this.listener.exited(key, { kind: "exited", code: 0 }));
  }
  override async stop(key: string, graceMs: number): Promise<void> {
    this.stops.push(`${key} grace ${graceMs}`);
    queueMicrotask(() => this.listener.exited(key, { kind: "start-failed", message: "stopped while it was being made" }));
  }
}

async function runWith(yaml: string, hang: string[], startTimeoutMs?: number) {
  const stops: string[] = [];
  const { run, recorder, clock, result } = await startOnFakeGroups(
    yaml,
    (group, listener) => new HangingGroup(group, listener, new Set(hang), stops),
    { maxRetries: 2, startTimeoutMs },
  );
  const cancel = () => run.cancel(false, "canceled by the test");
  /** What the record says of attempt `retryId` of task `task` (its index) of the first group. */
  const attempt = (task: number, retryId = 0) => recorder.attempts.get(`0/${task}`)?.find((row) => row.retryId === retryId);
  return { stops, recorder, clock, attempt, cancel, result };
}

const pair = [
  "workflow:",
  "  name: pair",
  "  groups:",
  "  - name: both",
  "    tasks:",
  "    - {name: server, image: alpine, command: [true], lead: true}",
  "    - {name: client, image: alpine, command: [true]}",
].join("\n");

describe("the start timeout", () => {
  it("ends a lead whose sandbox never comes up FAILED_START_TIMEOUT (3005) once it is due, not before, stops it, and ends its group and run so", async () => {
    const { stops, clock, attempt, result } = await runWith(pair, ["server"], 5_000);
    expect(attempt(0)?.status).toBe("INITIALIZING");
    clock.advance(4_999);
    await flush();
    expect(attempt(0)?.status).toBe("INITIALIZING");
    expect(stops).toEqual([]);
    clock.advance(1);
    await flush(30);
    expect(attempt(0)).toMatchObject({ status: "FAILED_START_TIMEOUT", exitCode: 3005 });
    expect(attempt(0)?.reason).toMatch(/did not start in time: its sandbox was not up 5s after it was asked for/);
    expect(stops).toContain("both/server/0 grace 0");
    // Not rescheduled though retries are allowed: a start timeout fails, as in OSMO.
    expect(attempt(0, 1)).toBeUndefined();
    // The client came up and waited at the barrier: ended with its lead, never released.
    expect(attempt(1)).toMatchObject({ status: "FAILED" });
    expect(result()?.status).toBe("FAILED_START_TIMEOUT");
    expect(clock.nextDue()).toBeUndefined();
  });

  it("leaves members that come up in time alone: a non-lead that hangs fails alone and the lead runs (ignoreNonleadStatus)", async () => {
    const { clock, attempt, result } = await runWith(pair, ["client"], 5_000);
    clock.advance(5_000);
    await flush(30);
    expect(attempt(1)).toMatchObject({ status: "FAILED_START_TIMEOUT", exitCode: 3005 });
    expect(attempt(0)).toMatchObject({ status: "COMPLETED", exitCode: 0 });
    expect(result()?.status).toBe("COMPLETED");
    expect(clock.nextDue()).toBeUndefined();
  });

  it("arms nothing once every member is up: no timer is left after a run that started in time", async () => {
    const { clock, result } = await runWith(pair, [], 5_000);
    expect(result()?.status).toBe("COMPLETED");
    expect(clock.nextDue()).toBeUndefined();
  });

  it("is 30 minutes by default, and 0 means no limit", async () => {
    const byDefault = await runWith(pair, ["server"]);
    byDefault.clock.advance(30 * 60_000 - 1);
    await flush();
    expect(byDefault.attempt(0)?.status).toBe("INITIALIZING");
    byDefault.clock.advance(1);
    await flush(30);
    expect(byDefault.attempt(0)?.reason).toMatch(/not up 30m after/);

    const none = await runWith(pair, ["server"], 0);
    none.clock.advance(365 * 24 * 3_600_000);
    await flush();
    expect(none.attempt(0)?.status).toBe("INITIALIZING");
    expect(none.stops).toEqual([]);
  });

  it("applies to a task of a flat workflow, started released (releaseWhenReady)", async () => {
    const flat = ["workflow:", "  name: flat", "  tasks:", "  - {name: a, image: alpine, command: [true]}"].join("\n");
    const { clock, attempt, result } = await runWith(flat, ["a"], 2_500);
    clock.advance(2_500);
    await flush(30);
    expect(attempt(0)).toMatchObject({ status: "FAILED_START_TIMEOUT", exitCode: 3005 });
    expect(attempt(0)?.reason).toMatch(/not up 2\.5s after/);
    expect(result()?.status).toBe("FAILED_START_TIMEOUT");
  });

  it("does not make a cancel wait for a sandbox that is not up: the member being prepared is stopped at once", async () => {
    const { stops, clock, cancel, attempt, result } = await runWith(pair, ["server"], 5_000);
    cancel();
    await flush(30);
    expect(stops).toContain("both/server/0 grace 5000");
    expect(attempt(0)?.status).toBe("FAILED_CANCELED");
    expect(result()?.status).toBe("FAILED_CANCELED");
    expect(clock.nextDue()).toBeUndefined();
  });
});
