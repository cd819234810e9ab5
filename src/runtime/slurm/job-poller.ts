/**
 * A session's look at its jobs in Slurm: one `squeue` for every job watched,
 * every interval while any is, each watcher told its job's line (undefined:
 * Slurm no longer knows it). The helpers say most of what happens; this is
 * for what they cannot (a job pending, cancelled, its node lost).
 */
import { tolerated } from "../../util/log.js";
import { jobStates, type JobLine } from "./slurm-commands.js";

export type JobWatcher = (line: JobLine | undefined) => void;

export class JobPoller {
  private readonly watchers = new Map<string, Set<JobWatcher>>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly intervalMs = 1000,
  ) {}

  watch(jobId: string, watcher: JobWatcher): () => void {
    let set = this.watchers.get(jobId);
    if (!set) this.watchers.set(jobId, (set = new Set()));
    set.add(watcher);
    this.schedule();
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.watchers.get(jobId) === set) this.watchers.delete(jobId);
    };
  }

  /** Looks now (a member's helper went away: what became of its job?). */
  pollSoon(): void {
    if (this.closed || this.polling) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), 50);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.closed || this.timer || this.polling || this.watchers.size === 0) return;
    this.timer = setTimeout(() => void this.poll(), this.intervalMs);
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    if (this.closed || this.watchers.size === 0) return;
    this.polling = true;
    try {
      const ids = [...this.watchers.keys()];
      const lines = await jobStates(this.env, ids);
      for (const id of ids) for (const watcher of [...(this.watchers.get(id) ?? [])]) watcher(lines.get(id));
    } catch (error) {
      tolerated("asking Slurm for the state of the run's jobs", {}, "warn")(error);
    } finally {
      this.polling = false;
      this.schedule();
    }
  }
}
