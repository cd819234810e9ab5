/**
 * Durations as workflows write their timeouts (`exec_timeout: 30m`) and
 * troupe's flags and pools take them (`--start-timeout 10m`), in one place
 * for the validator, the planner and the CLI. Pure: no Node, no dependencies.
 */

const DURATION_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `<int><s|m|h|d>`, one unit only, in milliseconds. A bare integer means seconds. */
export function parseDuration(input: string | number): { ok: true; value: number } | { ok: false; reason: string } {
  if (typeof input === "number") {
    return Number.isInteger(input) && input >= 0
      ? { ok: true, value: input * 1000 }
      : { ok: false, reason: "must be a whole number of seconds or `<int><s|m|h|d>`" };
  }
  const match = /^(\d+)([smhd])$/.exec(input.trim());
  if (!match) return { ok: false, reason: "must be an integer followed by one unit: s, m, h or d (for example `30m`)" };
  return { ok: true, value: Number(match[1]) * (DURATION_UNITS[match[2] as string] as number) };
}
