/**
 * A token naming this process uniquely across PID reuse and reboots
 * (`pid:start-time:boot-id`), and the check whether such a process still runs.
 */
import { readFileSync } from "node:fs";

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    // No /proc (not Linux): identities then hold for this boot's processes only by their PID and start time.
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
    // No such process (any more).
    return undefined;
  }
}

/** This process's own token, read once (a server asks for it with every run it starts). */
let ownToken: string | undefined;

export function processToken(pid = process.pid): string {
  if (pid === process.pid) return (ownToken ??= `${pid}:${startTime(pid) ?? "?"}:${bootId()}`);
  return `${pid}:${startTime(pid) ?? "?"}:${bootId()}`;
}

export function isProcessTokenAlive(token: string): boolean {
  const [pid, start, boot] = token.split(":");
  if (boot !== bootId()) return false;
  const now = startTime(Number(pid));
  return now !== undefined && now === start;
}

/**
 * Runs whose tasks outlive their process (the server's kept tasks) are owned
 * by `kept:<token>`: when that process is gone, only a server may settle or
 * resume them, by re-attaching the tasks; other troupe processes leave them
 * alone unless the machine rebooted (nothing of them can be running then).
 */
const KEPT = "kept:";

export function keptOwnerToken(): string {
  return KEPT + processToken();
}

/** For runs of a process that kept its tasks: its own token; else undefined. */
export function keptOwnerProcess(owner: string): string | undefined {
  return owner.startsWith(KEPT) ? owner.slice(KEPT.length) : undefined;
}

/** Whether a run's owner may still be driving it, or (kept tasks) a server may still resume it. */
export function isRunOwnerAlive(owner: string): boolean {
  const kept = keptOwnerProcess(owner);
  if (kept === undefined) return isProcessTokenAlive(owner);
  return kept.split(":")[2] === bootId();
}
