/**
 * A restart takes over the groups that completed in the run it restarts:
 * their tasks are recorded COMPLETED with a reason naming the run they ran
 * in, for people. Where they ran is data (`reused_from`, StatusUpdate.reusedFrom):
 * nothing reads the reason for it but engine/reuse.ts, which store/restart-origins.ts
 * replaces (then `reusedFrom` below goes; migration 9 has its own copy of the pattern
 * for runs recorded before).
 */

/** The reason a restart records for a task or group it took over from run `from`. */
export function reusedReason(from: string): string {
  return `completed in run ${from}: its outputs are reused`;
}

const REUSED = /^completed in run (\S+): its outputs are reused$/;

/** The run a task or group was taken over from, when its reason says it was (see reusedReason). */
export function reusedFrom(reason: string | null | undefined): string | undefined {
  return reason ? REUSED.exec(reason)?.[1] : undefined;
}
