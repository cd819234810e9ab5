/**
 * A restart (`troupe restart`, the server's `workflow restart`) takes over the
 * groups that completed in the run it restarts: they are not run again, their
 * tasks' outputs are used where they are. The records say where from
 * (`reused_from`); this is what a restart is given to run with.
 */

/** A group a restart takes over: the run it completed in, and each task's outputs and exit code there (plan order). */
export interface ReusedGroup {
  from: string;
  tasks: ReadonlyArray<{ outputDir: string; exitCode: number | null }>;
}

/** The groups a restart takes over, by group index in the plan. */
export type ReusedGroups = ReadonlyMap<number, ReusedGroup>;
