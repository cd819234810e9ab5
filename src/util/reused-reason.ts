/**
 * A restart takes over the groups that completed in the run it restarts:
 * their tasks are recorded COMPLETED with a reason naming the run they ran
 * in, for people. Where they ran is data (`reused_from`, StatusUpdate.reusedFrom,
 * read by store/restart-origins.ts); nothing parses this reason (migration 10
 * has its own copy of the pattern, for runs recorded before the column).
 */

/** The reason a restart records for a task or group it took over from run `from`. */
export function reusedReason(from: string): string {
  return `completed in run ${from}: its outputs are reused`;
}
