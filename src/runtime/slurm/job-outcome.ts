/**
 * How a member ended when its helper could not say so (no message, no exit
 * file): from its job's state in Slurm. And which pending reasons mean the
 * job can never start. Decisions only: slurm-group.ts reads the states.
 */
import type { MemberOutcome } from "../../port/index.js";
import type { JobLine } from "./slurm-commands.js";

/** Job states after which nothing of the job runs any more. */
const ENDED = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "NODE_FAIL",
  "PREEMPTED",
  "TIMEOUT",
  "OUT_OF_MEMORY",
  "BOOT_FAIL",
  "DEADLINE",
  "SPECIAL_EXIT",
  "REVOKED",
]);

export function jobEnded(state: string): boolean {
  return ENDED.has(state);
}

/**
 * The outcome of a member whose job `job` ended (or that Slurm no longer
 * knows: `job` undefined) without its helper's word. `stopped`: troupe
 * stopped it (its cancel is troupe's own); `signalled`: Slurm signalled its
 * step (with the command's exit status, when it had one).
 */
export function outcomeOfJob(jobId: string, job: JobLine | undefined, stopped: boolean, signalled?: { code?: number }): MemberOutcome {
  if (!job) return { kind: "lost", message: `Slurm no longer knows job ${jobId} and its member left no exit status` };
  const where = job.nodes ? ` on ${job.nodes}` : "";
  switch (job.state) {
    case "NODE_FAIL":
    case "BOOT_FAIL":
      return { kind: "backend-error", message: `job ${jobId}: its node failed${where} (${job.state})` };
    case "PREEMPTED":
      return { kind: "preempted", message: `job ${jobId} was preempted${where}` };
    case "OUT_OF_MEMORY":
      return { kind: "exited", code: 137, reason: `job ${jobId} ran out of memory${where} (OUT_OF_MEMORY)` };
    case "TIMEOUT":
    case "DEADLINE":
      return { kind: "backend-error", message: `job ${jobId} reached its Slurm time limit${where} (${job.state})` };
    case "CANCELLED":
      if (stopped) return { kind: "start-failed", message: `stopped before its command started (job ${jobId} cancelled)` };
      return { kind: "backend-error", message: `job ${jobId} was cancelled outside troupe (scancel)${where}` };
    default:
      // Signalled and then not ended by Slurm (`scancel --signal`): the command's own end stands.
      if (signalled?.code !== undefined)
        return { kind: "exited", code: signalled.code, reason: `after a signal from Slurm; job ${jobId} ended ${job.state}` };
      return {
        kind: "backend-error",
        message: `job ${jobId} ended ${job.state}${where} before its member's helper ran the command (see the job's output in the run's shared directory)`,
      };
  }
}

/**
 * A pending job that can never start, by its reason (sbatch accepts such a
 * job and leaves it pending for ever): what to say, or undefined.
 */
export function neverStarts(job: JobLine): string | undefined {
  if (job.state !== "PENDING") return undefined;
  if (/PartitionNodeLimit|BadConstraints|InvalidAccount|InvalidQOS|AccountNotAllowed/.test(job.reason))
    return `job ${job.id.split("+")[0]} can never start: Slurm says ${job.reason}`;
  return undefined;
}
