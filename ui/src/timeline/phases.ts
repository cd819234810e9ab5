/**
 * The timeline's deciding half: from a workflow's status changes (its events, in order) to one row per task
 * attempt, each a run of phases: waiting for upstream groups, waiting for resources (SCHEDULING), preparing its
 * sandbox (INITIALIZING, up to its group's barrier), running. A group's barrier is released when the group goes
 * RUNNING; how long after that an attempt's command started is its start skew. Past ROWS_PER_TASK_LIMIT attempts
 * the rows are the groups' own (the aggregated view: a 100,000-task workflow stays a few thousand rows).
 */
import { isFinal } from "../../../src/model/index.js";

/** The events the timeline reads (a stream's event lines or GET .../events). */
export interface PhaseEvent {
  group: string | null;
  task: string | null;
  retry_id: number | null;
  to: string;
  reason: string;
  time: string;
}

export interface Segment {
  status: string;
  start: number;
  end: number;
}

export interface TimelineRow {
  /** Unique among the rows: group, task and retry. */
  key: string;
  group: string;
  /** null on a group's row (the aggregated view). */
  task: string | null;
  retry: number;
  segments: Segment[];
  /** Where the attempt (or group) is now: its last status. */
  status: string;
  /** Its group's barrier release (the group went RUNNING), if it was. */
  barrier: number | null;
  /** Milliseconds from the barrier's release to this attempt's command starting (on a group's row: its slowest task's). */
  skew: number | null;
}

export interface Timeline {
  start: number;
  end: number;
  rows: TimelineRow[];
  /** The rows are the groups' (too many attempts to show each). */
  aggregated: boolean;
  attempts: number;
}

/** More attempts than this and the timeline shows a row per group. */
export const ROWS_PER_TASK_LIMIT = 2_000;

interface Building {
  group: string;
  task: string | null;
  retry: number;
  segments: Segment[];
  status: string;
  runningSince: number | null;
}

function advance(row: Building, to: string, time: number): void {
  const open = row.segments.at(-1);
  if (open && open.end === Infinity) open.end = time;
  row.status = to;
  if (to === "RUNNING" && row.runningSince === null) row.runningSince = time;
  if (!isFinal(to) && to !== "RESCHEDULED") row.segments.push({ status: to, start: time, end: Infinity });
}

/** `now` closes the phases still going on (a live workflow's bars grow to the present). */
export function buildTimeline(events: readonly PhaseEvent[], now: number): Timeline {
  const attempts = new Map<string, Building>();
  const groups = new Map<string, Building>();
  let start = Infinity;
  let end = -Infinity;
  for (const event of events) {
    if (event.group === null) continue;
    const time = Date.parse(event.time);
    if (Number.isNaN(time)) continue;
    start = Math.min(start, time);
    end = Math.max(end, time);
    const task = event.task;
    const map = task === null ? groups : attempts;
    const key = task === null ? event.group : `${event.group}\0${task}\0${event.retry_id ?? 0}`;
    let row = map.get(key);
    if (!row) {
      row = { group: event.group, task, retry: event.retry_id ?? 0, segments: [], status: event.to, runningSince: null };
      map.set(key, row);
    }
    advance(row, event.to, time);
  }
  if (start === Infinity) return { start: now, end: now, rows: [], aggregated: false, attempts: 0 };
  const live = [...attempts.values(), ...groups.values()].some((row) => row.segments.at(-1)?.end === Infinity);
  if (live) end = Math.max(end, now);
  for (const row of [...attempts.values(), ...groups.values()]) for (const s of row.segments) if (s.end === Infinity) s.end = end;

  const barrierOf = (group: string) => groups.get(group)?.runningSince ?? null;
  const skewOf = (row: Building) => {
    const barrier = barrierOf(row.group);
    // An attempt that came up after the barrier (a retry of one member) was never held by it.
    const passedBarrier = barrier !== null && (row.segments[0]?.start ?? Infinity) <= barrier;
    return !passedBarrier || row.runningSince === null ? null : Math.max(0, row.runningSince - barrier);
  };
  const aggregated = attempts.size > ROWS_PER_TASK_LIMIT;
  const finish = (key: string, row: Building, skew: number | null): TimelineRow => ({
    key,
    group: row.group,
    task: row.task,
    retry: row.retry,
    segments: row.segments,
    status: row.status,
    barrier: barrierOf(row.group),
    skew,
  });
  if (aggregated) {
    const slowest = new Map<string, number>();
    for (const row of attempts.values()) {
      const skew = skewOf(row);
      if (skew !== null) slowest.set(row.group, Math.max(slowest.get(row.group) ?? 0, skew));
    }
    const rows = [...groups].map(([key, row]) => finish(key, row, slowest.get(row.group) ?? null));
    return { start, end, rows, aggregated, attempts: attempts.size };
  }
  // Attempts of a group together, in the order their groups and tasks first appeared; retries after their first try.
  const groupOrder = new Map([...groups.keys()].map((g, i) => [g, i]));
  const taskOrder = new Map<string, number>();
  for (const row of attempts.values())
    if (!taskOrder.has(`${row.group}\0${row.task}`)) taskOrder.set(`${row.group}\0${row.task}`, taskOrder.size);
  const orderOf = (row: TimelineRow) => [groupOrder.get(row.group) ?? 0, taskOrder.get(`${row.group}\0${row.task}`) ?? 0, row.retry];
  const rows = [...attempts].map(([key, row]) => {
    const done = finish(key, row, skewOf(row));
    return { row: done, order: orderOf(done) };
  });
  rows.sort((a, b) => a.order[0]! - b.order[0]! || a.order[1]! - b.order[1]! || a.order[2]! - b.order[2]!);
  return { start, end, rows: rows.map((r) => r.row), aggregated, attempts: attempts.size };
}

/** A duration as people read it: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, "0")} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
