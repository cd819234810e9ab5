/**
 * A small pool of worker threads, one job at a time per worker, jobs served
 * in the order they came. A job's time bound counts from when a worker starts
 * it (the worker says when), not from when it was queued: a job that waited
 * behind slow ones is not failed for their time. A worker that runs over is
 * terminated and replaced; a worker that dies fails only its own job. Jobs
 * may carry a key (who asked): one key holds at most `perKey` workers at once,
 * so that one user's big jobs leave workers for everyone else's.
 *
 * Protocol: the pool posts `{ id, job }`; the worker answers `{ id, started }`
 * (Date.now() when it began) and then `{ id, result }`, or `{ id, error }` (a
 * message) when the job failed: that job fails, and the worker takes the next.
 */
import { Worker, type ResourceLimits } from "node:worker_threads";

export interface WorkerPoolOptions {
  file: URL;
  /** How many workers at most (made when needed, kept while idle). */
  size: number;
  resourceLimits?: ResourceLimits;
  /** How many workers the jobs of one key may hold at once (default: all). */
  perKey?: number;
}

/** `failed`: the worker answered with an error (it goes on); `crashed`: the worker died or exited. */
export type JobOutcome<R> =
  { kind: "done"; result: R } | { kind: "failed"; error: Error } | { kind: "timeout" } | { kind: "crashed"; error: Error };

interface Job<T, R> {
  id: number;
  job: T;
  key: string | undefined;
  timeoutMs: number | undefined;
  settle: (outcome: JobOutcome<R>) => void;
}

interface Slot<T, R> {
  worker: Worker;
  job?: Job<T, R>;
  timer?: NodeJS.Timeout;
}

export class WorkerPool<T, R> {
  private readonly slots: Array<Slot<T, R>> = [];
  private readonly queue: Array<Job<T, R>> = [];
  private nextId = 1;

  constructor(private readonly options: WorkerPoolOptions) {}

  /** Runs `job` on a worker; `timeoutMs` bounds it from the moment the worker starts it. */
  run(job: T, options: { timeoutMs?: number; key?: string } = {}): Promise<JobOutcome<R>> {
    return new Promise((settle) => {
      this.queue.push({ id: this.nextId++, job, key: options.key, timeoutMs: options.timeoutMs, settle });
      this.dispatch();
    });
  }

  /** Workers now running (for tests). */
  get size(): number {
    return this.slots.length;
  }

  private dispatch(): void {
    const perKey = this.options.perKey ?? this.options.size;
    for (;;) {
      const held = (key: string | undefined) => this.slots.filter((s) => s.job !== undefined && s.job.key === key).length;
      const index = this.queue.findIndex((j) => j.key === undefined || held(j.key) < perKey);
      if (index === -1) return;
      let slot = this.slots.find((s) => s.job === undefined);
      if (!slot) {
        if (this.slots.length >= this.options.size) return;
        slot = this.spawn();
      }
      const job = this.queue.splice(index, 1)[0] as Job<T, R>;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, job: job.job });
    }
  }

  private spawn(): Slot<T, R> {
    const worker = new Worker(this.options.file, { resourceLimits: this.options.resourceLimits });
    const slot: Slot<T, R> = { worker };
    worker.on("message", (message: { id: number; started?: number; result?: R; error?: string }) => {
      const job = slot.job;
      if (!job || message.id !== job.id) return;
      if (message.started !== undefined) {
        if (job.timeoutMs !== undefined) {
          const left = Math.max(0, job.timeoutMs - Math.max(0, Date.now() - message.started));
          slot.timer = setTimeout(() => this.retire(slot, { kind: "timeout" }), left);
        }
        return;
      }
      if (message.error !== undefined) this.finish(slot, { kind: "failed", error: new Error(message.error) });
      else this.finish(slot, { kind: "done", result: message.result as R });
    });
    worker.on("error", (error) => this.retire(slot, { kind: "crashed", error }));
    worker.on("exit", () => this.retire(slot, { kind: "crashed", error: new Error("the worker exited") }));
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  /** The slot's job is answered; the worker takes the next one. */
  private finish(slot: Slot<T, R>, outcome: JobOutcome<R>): void {
    const job = slot.job;
    clearTimeout(slot.timer);
    slot.job = undefined;
    slot.timer = undefined;
    slot.worker.unref();
    job?.settle(outcome);
    this.dispatch();
  }

  /** The slot's job fails with `outcome` and its worker is ended (a new one takes the queue). */
  private retire(slot: Slot<T, R>, outcome: JobOutcome<R>): void {
    const index = this.slots.indexOf(slot);
    if (index === -1) return;
    this.slots.splice(index, 1);
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    void slot.worker.terminate();
    job?.settle(outcome);
    this.dispatch();
  }
}
