/**
 * PrepareOptions.releaseWhenReady: the engine asks a runtime to start a member's command as its sandbox comes
 * up only where nothing is waited for between the two (a group of one, no data to stage, no durable record
 * first), and records it RUNNING, with its start time, before any end of it, even when the runtime reports the
 * attempt ready and ended in one go (as a fast command started that way can be). A port-level fake group: the
 * engine's side alone (the host runtime's is in test/runtime/host-runtime.test.ts).
 */
import { describe, expect, it } from "vitest";
import type { GroupHandle, GroupListener, GroupRef, MemberRef, PrepareOptions, TaskLaunch } from "../../src/port/index.js";
import { InertGroupParts, startOnFakeGroups } from "./fakes.js";

/** A group whose members are placed at once; one prepared with releaseWhenReady runs and exits 0 in the same call. */
class InstantGroup extends InertGroupParts implements GroupHandle {
  readonly id: string;
  constructor(
    group: GroupRef,
    private readonly listener: GroupListener,
    private readonly log: string[],
  ) {
    super();
    this.id = group.name;
  }
  place(members: readonly MemberRef[]): void {
    queueMicrotask(() => members.forEach((m, i) => this.listener.placed(m.key, { address: `10.0.0.${i + 1}`, hostName: m.taskName })));
  }
  prepare(launch: TaskLaunch, options?: PrepareOptions): void {
    this.log.push(`prepare ${launch.key}${options?.releaseWhenReady ? " releaseWhenReady" : ""}`);
    if (options?.releaseWhenReady) {
      // Started with its sandbox, and already done: both told before the engine's next turn.
      this.listener.ready(launch.key);
      this.listener.exited(launch.key, { kind: "exited", code: 0 });
      return;
    }
    queueMicrotask(() => this.listener.ready(launch.key));
  }
  async release(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      this.log.push(`release ${key}`);
      // A member started released is over already: its exit was told with its ready.
      queueMicrotask(() => this.listener.exited(key, { kind: "exited", code: 0 }));
    }
  }
}

async function runWith(yaml: string, durableStarts = false) {
  const log: string[] = [];
  const { recorder, result } = await startOnFakeGroups(yaml, (group, listener) => new InstantGroup(group, listener, log), {
    durableStarts,
  });
  return { log, recorder, result };
}

const flat = [
  "workflow:",
  "  name: flat",
  "  tasks:",
  "  - {name: a, image: alpine, command: [true]}",
  "  - {name: b, image: alpine, command: [true]}",
].join("\n");

describe("releaseWhenReady", () => {
  it("is asked for each task of a flat workflow (a group of one), and its release changes nothing the record shows", async () => {
    const { log, recorder, result } = await runWith(flat);
    expect(result()?.status).toBe("COMPLETED");
    expect(log.filter((l) => l.startsWith("prepare")).sort()).toEqual([
      "prepare a-group/a/0 releaseWhenReady",
      "prepare b-group/b/0 releaseWhenReady",
    ]);
    for (const [key, rows] of recorder.attempts) {
      const row = rows[rows.length - 1]!;
      expect(row.status, key).toBe("COMPLETED");
      expect(row.exitCode, key).toBe(0);
      expect(row.startTime, key).toEqual(expect.any(Number));
      expect(row.endTime!, key).toBeGreaterThanOrEqual(row.startTime!);
    }
  });

  it("records the member RUNNING before its end when ready and exited are told together", async () => {
    const { recorder } = await runWith(flat);
    const statuses = recorder.transitions.filter((x) => x.subject.kind === "task" && x.subject.task === 0 && x.subject.group === 0);
    expect(statuses.map((x) => x.to)).toEqual(["WAITING", "SCHEDULING", "INITIALIZING", "RUNNING", "COMPLETED"]);
  });

  it("is not asked for members of a group of several (the barrier waits for every member), nor where starts are recorded durably first", async () => {
    const several = [
      "workflow:",
      "  name: pair",
      "  groups:",
      "  - name: both",
      "    tasks:",
      "    - {name: a, image: alpine, command: [true], lead: true}",
      "    - {name: b, image: alpine, command: [true]}",
    ].join("\n");
    const group = await runWith(several);
    expect(group.log.filter((l) => l.startsWith("prepare")).sort()).toEqual(["prepare both/a/0", "prepare both/b/0"]);
    expect(group.log.filter((l) => l.startsWith("release")).sort()).toEqual(["release both/a/0", "release both/b/0"]);
    const durable = await runWith(flat, true);
    expect(durable.log.filter((l) => l.startsWith("prepare")).sort()).toEqual(["prepare a-group/a/0", "prepare b-group/b/0"]);
    expect(durable.result()?.status).toBe("COMPLETED");
  });
});
