/**
 * A task's `checkpoint:` (SPEC-REFERENCE, "Data"): the files of a directory
 * in the task uploaded every `frequency` while its command runs (the wait
 * counted from the end of one upload to the start of the next, as OSMO's
 * does) and once more when the command has ended, before its end is decided.
 *
 * Where the directory is on this machine: inside the task's output, that
 * part of the output directory; elsewhere, a directory of the attempt's own
 * that the runtime shows the task at the path (TaskLaunch.mounts); where
 * tasks see this machine's paths as they are (a pool without mounts), the
 * path itself.
 */
import { posix } from "node:path";
import { attemptCheckpointDir, OSMO_OUTPUT_PATH, osmoInputPath } from "../model/index.js";
import type { CompiledTask } from "../plan/index.js";
import type { DataPlane, PoolCapabilities, TaskLaunch, TaskMount, TransferReport, UrlTransfer } from "../port/index.js";
import { normalizeName } from "../spec/index.js";
import { formatBytes } from "../util/units.js";
import type { Clock } from "./clock.js";
import { resolveTokens, type TokenContext } from "./launch.js";

/** One checkpoint of an attempt: what is uploaded where, how often, and the mount that shows its directory to the task. */
export interface CheckpointPlace {
  /** The directory as the task sees it. */
  path: string;
  transfer: UrlTransfer;
  frequencyMs: number;
  mount: TaskMount | undefined;
}

/** What deciding where checkpoints are needs of the run. */
export interface CheckpointSight {
  runId: string;
  dataDir: string;
  taskView: Pick<PoolCapabilities, "mounts" | "dataPaths">;
}

/** What deciding an attempt's checkpoint places needs of its launch (all of it is known before placement but `hosts`). */
export type AttemptDirs = Pick<TaskLaunch, "outputDir" | "inputDirs" | "hosts" | "retryId">;

/** The tokens of `launch` as its task sees them (its data at OSMO's paths where the pool shows them there). */
export function seenTokens(sight: CheckpointSight, launch: AttemptDirs): TokenContext {
  const osmo = sight.taskView.dataPaths === "osmo";
  return {
    workflowId: sight.runId,
    outputDir: osmo ? OSMO_OUTPUT_PATH : launch.outputDir,
    inputDirs: osmo ? launch.inputDirs.map((_, i) => osmoInputPath(i)) : launch.inputDirs,
    hosts: new Map(Object.entries(launch.hosts).map(([name, address]) => [normalizeName(name), address])),
  };
}

/** Where each of task's checkpoints is, for its attempt `launch` (whose mounts do not include theirs yet). */
export function checkpointPlaces(sight: CheckpointSight, task: CompiledTask, launch: AttemptDirs): CheckpointPlace[] {
  if (task.checkpoints.length === 0) return [];
  const tokens = seenTokens(sight, launch);
  return task.checkpoints.map((checkpoint, i) => {
    // As the task spells it, without a trailing "/" (a mount's target, an event's text).
    const path = posix.normalize(resolveTokens(checkpoint.path, tokens)).replace(/(.)\/+$/, "$1");
    const inOutput = posix.relative(tokens.outputDir, path);
    let dir = path;
    let mount: TaskMount | undefined;
    if (!inOutput.startsWith("..") && !posix.isAbsolute(inOutput)) dir = posix.join(launch.outputDir, inOutput);
    else if (sight.taskView.mounts) {
      dir = attemptCheckpointDir(sight.dataDir, task.name, launch.retryId, i);
      mount = { source: dir, target: path, readOnly: false, made: true };
    }
    const url = resolveTokens(checkpoint.url, tokens);
    return { path, transfer: { url, regex: checkpoint.regex, dir }, frequencyMs: checkpoint.frequencyMs, mount };
  });
}

/** What the uploads need of the run, and what they tell it. */
export interface CheckpointSite {
  readonly clock: Clock;
  readonly data: DataPlane;
  /** An event of the attempt's task (an upload done or failed). */
  note(message: string): void;
}

/**
 * The periodic uploads of one attempt's checkpoints, from `start` (its
 * command started) to `finish` (its command ended: the last upload).
 * A periodic upload that fails is said and tried again at the next period;
 * the last one's failure is `finish`'s answer.
 */
export class CheckpointUploads {
  private readonly timers = new Map<number, unknown>();
  private readonly running = new Set<Promise<unknown>>();
  private finished = false;

  constructor(
    private readonly site: CheckpointSite,
    private readonly places: readonly CheckpointPlace[],
    private readonly signal: AbortSignal,
  ) {}

  start(): void {
    this.places.forEach((_, i) => this.schedule(i));
  }

  private schedule(i: number): void {
    if (this.finished || this.signal.aborted) return;
    const place = this.places[i]!;
    this.timers.set(
      i,
      this.site.clock.setTimer(() => {
        this.timers.delete(i);
        const upload = this.upload(place).then(
          (report) => this.finished || this.site.note(`checkpoint uploaded: ${describe(place, report)}`),
          (error: Error) =>
            this.finished ||
            this.signal.aborted ||
            this.site.note(`checkpoint to ${place.transfer.url} failed (tried again in ${seconds(place.frequencyMs)}): ${error.message}`),
        );
        this.running.add(upload);
        void upload.finally(() => (this.running.delete(upload), this.schedule(i)));
      }, place.frequencyMs),
    );
  }

  private upload(place: CheckpointPlace): Promise<TransferReport> {
    return this.site.data.upload([place.transfer], this.signal);
  }

  /**
   * The command ended: no more periodic uploads; once those under way are
   * done, with `last`, every checkpoint is uploaded a last time (unless the
   * attempt was stopped). Resolves to the first failure, if any.
   */
  async finish(last: boolean): Promise<Error | undefined> {
    this.finished = true;
    for (const timer of this.timers.values()) this.site.clock.clearTimer(timer);
    this.timers.clear();
    await Promise.all(this.running);
    if (!last || this.signal.aborted) return undefined;
    const results = await Promise.allSettled(this.places.map((place) => this.upload(place)));
    let failure: Error | undefined;
    results.forEach((result, i) => {
      const place = this.places[i]!;
      if (result.status === "fulfilled") this.site.note(`last checkpoint uploaded: ${describe(place, result.value)}`);
      else failure ??= result.reason as Error;
    });
    return failure;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}

function describe(place: CheckpointPlace, report: TransferReport): string {
  const files = `${report.files} file${report.files === 1 ? "" : "s"} (${formatBytes(report.bytes)})`;
  return `${files} of ${place.path} to ${place.transfer.url} in ${(report.ms / 1000).toFixed(2)} s`;
}
