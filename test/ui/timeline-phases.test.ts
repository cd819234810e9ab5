/** The timeline's rows (ui/src/timeline/phases.ts): phases, barrier, start skew, retries, the aggregated view. */
import { describe, expect, it } from "vitest";
import { buildTimeline, formatDuration, ROWS_PER_TASK_LIMIT, type PhaseEvent } from "../../ui/src/timeline/phases.js";

const T0 = Date.parse("2026-12-07T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms).toISOString();
const ev = (ms: number, group: string, task: string | null, to: string, retry = 0): PhaseEvent => ({
  group,
  task,
  retry_id: task === null ? null : retry,
  to,
  reason: "",
  time: at(ms),
});

/** A group of two: `a` starts its command 5 ms after the barrier, `b` 40 ms; `b` is rescheduled once. */
const events: PhaseEvent[] = [
  ev(0, "g", null, "WAITING"),
  ev(0, "g", "a", "WAITING"),
  ev(0, "g", "b", "WAITING"),
  ev(100, "g", null, "SCHEDULING"),
  ev(100, "g", "a", "SCHEDULING"),
  ev(100, "g", "b", "SCHEDULING"),
  ev(300, "g", null, "INITIALIZING"),
  ev(300, "g", "a", "INITIALIZING"),
  ev(300, "g", "b", "INITIALIZING"),
  ev(1_000, "g", null, "RUNNING"),
  ev(1_005, "g", "a", "RUNNING"),
  ev(1_040, "g", "b", "RUNNING"),
  ev(1_500, "g", "b", "RESCHEDULED"),
  ev(1_500, "g", "b", "INITIALIZING", 1),
  ev(1_800, "g", "b", "RUNNING", 1),
  ev(2_000, "g", "a", "COMPLETED"),
  ev(2_500, "g", "b", "FAILED", 1),
  ev(2_500, "g", null, "FAILED"),
];

describe("buildTimeline", () => {
  it("gives each attempt its phases, its group's barrier and its start skew; a retry is a row after its first try", () => {
    const timeline = buildTimeline(events, T0 + 10_000);
    expect(timeline.start).toBe(T0);
    expect(timeline.end).toBe(T0 + 2_500);
    expect(timeline.aggregated).toBe(false);
    expect(timeline.rows.map((r) => `${r.task}#${r.retry} ${r.status}`)).toEqual(["a#0 COMPLETED", "b#0 RESCHEDULED", "b#1 FAILED"]);
    const [a, b0, b1] = timeline.rows;
    expect(a!.segments.map((s) => [s.status, s.start - T0, s.end - T0])).toEqual([
      ["WAITING", 0, 100],
      ["SCHEDULING", 100, 300],
      ["INITIALIZING", 300, 1_005],
      ["RUNNING", 1_005, 2_000],
    ]);
    expect(a!.barrier).toBe(T0 + 1_000);
    expect(a!.skew).toBe(5);
    expect(b0!.skew).toBe(40);
    expect(b0!.segments.at(-1)).toMatchObject({ status: "RUNNING", end: T0 + 1_500 });
    expect(b1!.segments.map((s) => s.status)).toEqual(["INITIALIZING", "RUNNING"]);
    expect(b1!.segments[0]!.start).toBe(T0 + 1_500);
    // The retry came up after the barrier: it was never held by it.
    expect(b1!.skew).toBeNull();
  });

  it("runs the phases still going on up to now", () => {
    const live = buildTimeline(events.slice(0, 12), T0 + 1_200);
    expect(live.end).toBe(T0 + 1_200);
    expect(live.rows[0]!.segments.at(-1)).toMatchObject({ status: "RUNNING", end: T0 + 1_200 });
  });

  it("shows a row per group past the limit, with each group's slowest start after its barrier", () => {
    const many: PhaseEvent[] = [];
    for (let g = 0; g < 3; g++) {
      const group = `g${g}`;
      many.push(ev(0, group, null, "INITIALIZING"), ev(1_000, group, null, "RUNNING"));
      for (let t = 0; t <= ROWS_PER_TASK_LIMIT / 3; t++)
        many.push(ev(0, group, `t${t}`, "INITIALIZING"), ev(1_000 + t, group, `t${t}`, "RUNNING"));
    }
    const timeline = buildTimeline(many, T0 + 5_000);
    expect(timeline.aggregated).toBe(true);
    expect(timeline.attempts).toBeGreaterThan(ROWS_PER_TASK_LIMIT);
    expect(timeline.rows.map((r) => r.group)).toEqual(["g0", "g1", "g2"]);
    expect(timeline.rows[0]!.task).toBeNull();
    expect(timeline.rows[0]!.skew).toBe(Math.floor(ROWS_PER_TASK_LIMIT / 3));
  });

  it("has no rows before anything happened", () => {
    expect(buildTimeline([], T0).rows).toEqual([]);
  });
});

describe("formatDuration", () => {
  it("reads as people read durations", () => {
    expect([850, 12_345, 245_000, 7_380_000].map(formatDuration)).toEqual(["850 ms", "12.3 s", "4 min 05 s", "2 h 03 min"]);
  });
});
