/** The workflow page's record kept up to date from the stream's events (ui/src/live/apply-events.ts). */
import { describe, expect, it } from "vitest";
import type { RunRecord } from "../../src/model/index.js";
import { applyEvents, type StatusEvent } from "../../ui/src/live/apply-events.js";

const task = (name: string) => ({
  name,
  lead: false,
  status: "WAITING",
  exit_code: null,
  retry_id: 0,
  ip: null,
  start_time: null,
  end_time: null,
  reason: null,
});
const record: RunRecord = {
  id: "w-1",
  name: "w",
  status: "PENDING",
  submit_time: "2026-12-07T00:00:00.000Z",
  start_time: null,
  end_time: null,
  groups: [
    { name: "g", status: "WAITING", start_time: null, end_time: null, tasks: [task("a"), task("b")] },
    { name: "h", status: "WAITING", start_time: null, end_time: null, tasks: [task("c")] },
  ],
};
const ev = (group: string | null, t: string | null, to: string, retry: number | null = t === null ? null : 0): StatusEvent => ({
  group,
  task: t,
  retry_id: retry,
  to,
  reason: `to ${to}`,
  time: `2026-12-07T00:00:0${to.length % 10}.000Z`,
});

describe("applyEvents", () => {
  it("changes the statuses, reasons and retries the events say, copying only what changed", () => {
    const next = applyEvents(record, [
      ev(null, null, "RUNNING"),
      ev("g", null, "RUNNING"),
      ev("g", "a", "RUNNING"),
      ev("g", "b", "RUNNING"),
      ev("g", "b", "RESCHEDULED"),
      ev("g", "b", "INITIALIZING", 1),
      ev("g", "a", "COMPLETED"),
    ]);
    expect(next.status).toBe("RUNNING");
    expect(next.start_time).not.toBeNull();
    expect(next.groups[0]!.status).toBe("RUNNING");
    expect(next.groups[0]!.tasks.map((t) => [t.name, t.status, t.retry_id, t.reason])).toEqual([
      ["a", "COMPLETED", 0, "to COMPLETED"],
      ["b", "INITIALIZING", 1, "to INITIALIZING"],
    ]);
    expect(next.groups[0]!.tasks[0]!.end_time).not.toBeNull();
    // The retry starts afresh: no start time of the attempt before.
    expect(next.groups[0]!.tasks[1]!.start_time).toBeNull();
    // Untouched: the same objects; the record given is not changed.
    expect(next.groups[1]).toBe(record.groups[1]);
    expect(record.groups[0]!.tasks[0]!.status).toBe("WAITING");
    expect(record.status).toBe("PENDING");
  });

  it("ignores an earlier attempt's late events and names it does not know", () => {
    const retried = applyEvents(record, [ev("g", "b", "RUNNING", 1)]);
    const next = applyEvents(retried, [ev("g", "b", "FAILED", 0), ev("zz", null, "RUNNING"), ev("g", "zz", "RUNNING")]);
    expect(next.groups[0]!.tasks[1]).toMatchObject({ status: "RUNNING", retry_id: 1 });
    expect(applyEvents(record, [])).toBe(record);
  });
});
