/** Which members a RESCHEDULE restarts, and how (planReschedule): the table of OSMO's rules. */
import { describe, expect, it } from "vitest";
import { planReschedule, type MemberView } from "../../src/engine/restart-in-place.js";
import type { TaskStatus } from "../../src/engine/statuses.js";

/** A member: its status, and whether its runtime restarts in place (`+`) or not (`-`). */
const m = (status: TaskStatus | null, restartsInPlace = true): MemberView => ({ status, restartsInPlace });

describe("planReschedule", () => {
  // [case, lead index, ignoreNonleadStatus, rescheduled, members, fresh, inPlace]
  it.each<[string, number, boolean, number, MemberView[], number[], number[]]>([
    ["the lead: its running siblings restart in place", 0, true, 0, [m("RUNNING"), m("RUNNING"), m("RUNNING")], [0], [1, 2]],
    [
      "a non-lead, ignoreNonleadStatus false: the others, lead too, in place",
      0,
      false,
      1,
      [m("RUNNING"), m("RUNNING"), m("RUNNING")],
      [1],
      [0, 2],
    ],
    ["a non-lead, ignoreNonleadStatus true: itself only", 0, true, 1, [m("RUNNING"), m("RUNNING"), m("RUNNING")], [1], []],
    ["siblings that ended (completed, failed) are left as they are", 0, true, 0, [m("RUNNING"), m("COMPLETED"), m("FAILED")], [0], []],
    [
      "a sibling whose runtime cannot restart in place gets a fresh attempt",
      0,
      true,
      0,
      [m("RUNNING"), m("RUNNING", false), m("RUNNING")],
      [0, 1],
      [2],
    ],
    [
      "a sibling whose command has not started gets a fresh attempt",
      0,
      true,
      0,
      [m("RUNNING"), m("INITIALIZING"), m("RUNNING")],
      [0, 1],
      [2],
    ],
    [
      "the rescheduled member always starts fresh, even where it could restart in place",
      1,
      false,
      0,
      [m("RUNNING"), m("RUNNING")],
      [0],
      [1],
    ],
  ])("%s", (_, lead, ignoreNonleadStatus, rescheduled, members, fresh, inPlace) => {
    const group = { ignoreNonleadStatus, tasks: members.map((_, i) => ({ lead: i === lead })) };
    expect(planReschedule(group, rescheduled, members)).toEqual({ fresh, inPlace });
  });
});
