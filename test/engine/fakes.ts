/**
 * Fakes the engine's tests share: a clock whose timers fire by hand and a
 * recorder that keeps everything in memory. Nothing sleeps; `flush()` lets
 * pending promise callbacks run.
 */
import { WorkflowRun, type Clock, type RunOptions, type RunRecorder, type RunResult } from "../../src/engine/index.js";
import type { RunSession } from "../../src/port/index.js";
import type { StatusUpdate, Transition } from "../../src/store/index.js";
import type { Readable } from "node:stream";
import { compileYaml } from "./plan-helpers.js";

/** What the recorder keeps of one task attempt. */
export interface AttemptRow extends StatusUpdate {
  retryId: number;
}

export async function flush(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  time = 1_000_000;
  private nextId = 1;
  readonly timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }
  setTimer(callback: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + delayMs, callback });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves time on and fires, in order, the timers that are due by then. */
  advance(ms: number): void {
    this.time += ms;
    for (let fired = 0; ; fired++) {
      if (fired > 1_000) throw new Error("timers keep firing at the same time: the engine is spinning");
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= this.time).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) return;
      this.timers.delete(due[0]);
      due[1].callback();
    }
  }
  /** Fires every pending timer now, due or not (a timer that fires early must change nothing). */
  fireAll(): void {
    const all = [...this.timers.entries()];
    this.timers.clear();
    for (const [, t] of all) t.callback();
  }
  /** The earliest pending timer's due time. */
  nextDue(): number | undefined {
    const ats = [...this.timers.values()].map((t) => t.at);
    return ats.length === 0 ? undefined : Math.min(...ats);
  }
}

export class MemoryRecorder implements RunRecorder {
  readonly transitions: Transition[] = [];
  readonly run: StatusUpdate = {};
  readonly groups = new Map<number, StatusUpdate>();
  readonly attempts = new Map<string, AttemptRow[]>();

  recordTransition(_runId: string, transition: Transition): void {
    this.transitions.push(transition);
  }
  updateRun(_runId: string, update: StatusUpdate): void {
    Object.assign(this.run, update);
  }
  updateGroup(_runId: string, group: number, update: StatusUpdate): void {
    this.groups.set(group, { ...this.groups.get(group), ...update });
  }
  updateTask(_runId: string, group: number, task: number, update: StatusUpdate): void {
    const key = `${group}/${task}`;
    const rows = this.attempts.get(key) ?? [{ retryId: 0 }];
    this.attempts.set(key, rows);
    let row = rows[rows.length - 1]!;
    if (update.retryId !== undefined && update.retryId !== row.retryId) {
      row = { retryId: update.retryId };
      rows.push(row);
    }
    Object.assign(row, update);
  }
  logPath(_runId: string, groupName: string, taskName: string, retryId: number): string {
    return `/logs/${groupName}/${taskName}/${retryId}.log`;
  }
}

/**
 * What a fake group that only places, prepares and releases does with the rest of the port: stops are no-ops,
 * nothing restarts in place or re-attaches, no logs. A test's group extends it with the parts it plays.
 */
export abstract class InertGroupParts {
  async stop(_key: string, _graceMs: number): Promise<void> {}
  async restart(): Promise<boolean> {
    return false;
  }
  canRestart(): boolean {
    return false;
  }
  async reattach(): Promise<boolean> {
    return false;
  }
  logs(_key: string): Readable {
    throw new Error("no logs here");
  }
  async close(): Promise<void> {}
}

/**
 * A run of `yaml` on the groups `openGroup` makes (a port-level fake), with a FakeClock and a MemoryRecorder,
 * started and let go on until nothing more happens by itself; `options` over the defaults.
 */
export async function startOnFakeGroups(yaml: string, openGroup: RunSession["openGroup"], options: Partial<RunOptions> = {}) {
  const recorder = new MemoryRecorder();
  const clock = new FakeClock();
  const run = new WorkflowRun({
    runId: "wf-1",
    plan: await compileYaml(yaml),
    session: { openGroup, close: async () => undefined },
    recorder,
    dataDir: "/data/wf-1",
    capacity: { cpu: 64, gpu: 0, memoryBytes: 1024 ** 4 },
    maxParallel: 1000,
    maxRetries: 0,
    clock,
    leadHeadStartMs: 0,
    ...options,
  });
  let result: RunResult | undefined;
  void run.start().then((r) => (result = r));
  await flush(30);
  return { run, recorder, clock, result: () => result };
}
