/** Exit actions: ranges that do not overlap, and RESCHEDULE only where retries are possible. */
import type { DiagnosticBag } from "../diagnostics.js";
import { formatRange, parseExitRanges, rangesOverlap, type ExitRange } from "../values.js";
import { isMap, type WorkflowView } from "./view.js";

const ACTIONS = ["COMPLETE", "FAIL", "RESCHEDULE"] as const;

export function checkExitActions(view: WorkflowView, bag: DiagnosticBag, maxRetries: number): void {
  for (const task of view.tasks) {
    const actions = task.raw.exitActions;
    if (!isMap(actions)) continue;
    const seen: Array<{ action: string; range: ExitRange }> = [];
    for (const action of ACTIONS) {
      const value = actions[action];
      if (typeof value !== "string" && typeof value !== "number") continue;
      const parsed = parseExitRanges(value);
      if (!parsed.ok) continue; // reported by the schema
      for (const range of parsed.value) {
        const clash = seen.find((s) => rangesOverlap(s.range, range));
        if (clash) {
          const where = clash.action === action ? `another ${action} range` : `${clash.action} ${formatRange(clash.range)}`;
          bag.error(
            "E_OVERLAPPING_EXIT_RANGES",
            [...task.path, "exitActions", action],
            `${action} ${formatRange(range)} overlaps ${where}`,
            {
              hint: "each exit code may have one action",
            },
          );
        }
        seen.push({ action, range });
      }
      if (action === "RESCHEDULE" && maxRetries === 0) {
        bag.warning(
          "W_RESCHEDULE_WITHOUT_RETRIES",
          [...task.path, "exitActions", action],
          "RESCHEDULE has no effect while the retry limit is 0: the task fails instead",
          {
            hint: "run with --max-retries N, or on a pool that allows retries",
          },
        );
      }
    }
  }
}
