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
    // Keys in any case, as OSMO reads them; the key as written is where a problem is shown.
    const written = new Map(Object.keys(actions).map((key) => [key.toUpperCase(), key]));
    for (const action of ACTIONS) {
      const key = written.get(action);
      const value = key === undefined ? undefined : actions[key];
      if (key === undefined || (typeof value !== "string" && typeof value !== "number")) continue;
      const parsed = parseExitRanges(value);
      if (!parsed.ok) continue; // reported by the schema
      for (const range of parsed.value) {
        const clash = seen.find((s) => rangesOverlap(s.range, range));
        if (clash) {
          const where = clash.action === action ? `another ${action} range` : `${clash.action} ${formatRange(clash.range)}`;
          bag.error("E_OVERLAPPING_EXIT_RANGES", [...task.path, "exitActions", key], `${action} ${formatRange(range)} overlaps ${where}`, {
            hint: "each exit code may have one action",
          });
        }
        seen.push({ action, range });
      }
      if (action === "RESCHEDULE" && maxRetries === 0) {
        bag.warning(
          "W_RESCHEDULE_WITHOUT_RETRIES",
          [...task.path, "exitActions", key],
          "RESCHEDULE has no effect while the retry limit is 0: the task fails instead",
          {
            hint: "run with --max-retries N, or on a pool that allows retries",
          },
        );
      }
    }
  }
}
