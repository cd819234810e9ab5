/**
 * A token naming this process uniquely across PID reuse and reboots
 * (`pid:start-time:boot-id`), and the check whether such a process still runs.
 */
import { readFileSync } from "node:fs";

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown-boot";
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat). */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

export function processToken(pid = process.pid): string {
  return `${pid}:${startTime(pid) ?? "?"}:${bootId()}`;
}

export function isProcessTokenAlive(token: string): boolean {
  const [pid, start, boot] = token.split(":");
  if (boot !== bootId()) return false;
  const now = startTime(Number(pid));
  return now !== undefined && now === start;
}
