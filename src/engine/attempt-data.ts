/**
 * What a task attempt moves besides its command, around its group's barrier
 * (SPEC-REFERENCE, "Data"): its `url:` inputs are downloaded into
 * directories of its own while its sandbox comes up (the barrier waits for
 * them), task inputs with a `regex` get the matching files of the upstream
 * output linked into one, and its `url:` outputs are uploaded once its
 * command has ended, before its end is decided. The moving itself is the
 * pool's DataPlane (the port's seam); each transfer is an event with the time
 * it took, and a failure ends the attempt with OSMO's data exit code.
 */
import { copyFile, link, mkdir, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { RuntimeExitCode, storedOutputUrl } from "../model/index.js";
import { formatBytes } from "../util/units.js";
import type { CompiledTask } from "../plan/index.js";
import {
  DataTransferError,
  type DataPlane,
  type MemberOutcome,
  type TaskLaunch,
  type TransferReport,
  type UrlTransfer,
} from "../port/index.js";
import { normalizeName } from "../spec/index.js";
import { storedForeignUrl, storedUpstreamUrl, upstreamOutputDir, type RunView } from "./attempt-launch.js";
import { checkpointPlaces, type CheckpointPlace, type CheckpointUploads } from "./checkpoints.js";
import { resolveTokens } from "./launch.js";
import type { LiveAttempt, RunState } from "./run-state.js";

export interface AttemptTransfers {
  downloads: UrlTransfer[];
  /** Task inputs with a regex: the matching files of `from` linked into `dir`. */
  filtered: Array<{ from: string; dir: string; regex: string }>;
  uploads: UrlTransfer[];
  /** Its `checkpoint:` directories, uploaded while its command runs and once more at its end (checkpoints.ts). */
  checkpoints: CheckpointPlace[];
}

/** Whether task's attempts move any data (without a data store most do not: they skip all of this). */
export function movesData(view: RunView, task: CompiledTask): boolean {
  return (
    view.dataStore !== undefined ||
    task.outputs.length > 0 ||
    task.checkpoints.length > 0 ||
    task.inputs.some(
      (i) =>
        i.kind === "url" ||
        (i.kind === "task" && i.regex !== undefined) ||
        (i.kind === "workflow-task" && storedForeignUrl(view, i) !== undefined),
    )
  );
}

/** What attempt `launch` of task t moves: from its plan, into and out of the launch's directories. */
export function attemptTransfers(view: RunView, g: number, t: number, launch: TaskLaunch): AttemptTransfers {
  const task = view.plan.groups[g]!.tasks[t]!;
  const out: AttemptTransfers = { downloads: [], filtered: [], uploads: [], checkpoints: checkpointPlaces(view, task, launch) };
  task.inputs.forEach((input, i) => {
    const dir = launch.inputDirs[i]!;
    // With a data store, what an upstream task made comes from the store, its regex applied to the download.
    const stored =
      input.kind === "task" ? storedUpstreamUrl(view, input) : input.kind === "workflow-task" ? storedForeignUrl(view, input) : undefined;
    if (input.kind === "url") out.downloads.push({ url: input.url, regex: input.regex, dir });
    else if (stored !== undefined) out.downloads.push({ url: stored, regex: input.kind === "task" ? input.regex : undefined, dir });
    else if (input.kind === "task" && input.regex !== undefined)
      out.filtered.push({ from: upstreamOutputDir(view, input), dir, regex: input.regex });
  });
  // Intermediate storage: the whole output goes up to the run's data store for whoever consumes it.
  if (view.dataStore !== undefined)
    out.uploads.push({ url: storedOutputUrl(view.dataStore, view.runId, task.name, launch.retryId), dir: launch.outputDir });
  const hosts = new Map(Object.entries(launch.hosts).map(([name, address]) => [normalizeName(name), address]));
  const context = { workflowId: view.runId, outputDir: launch.outputDir, inputDirs: launch.inputDirs, hosts };
  for (const output of task.outputs)
    out.uploads.push({ url: resolveTokens(output.url, context), regex: output.regex, dir: launch.outputDir });
  return out;
}

function reportText(report: TransferReport, direction: "from" | "to", urls: readonly UrlTransfer[]): string {
  const files = `${report.files} file${report.files === 1 ? "" : "s"}`;
  return `${files} (${formatBytes(report.bytes)}) ${direction} ${urls.map((u) => u.url).join(", ")} in ${(report.ms / 1000).toFixed(2)} s`;
}

/** What the data steps need of the run. */
export interface DataSite {
  readonly state: RunState;
  /** The pool's data plane; without one, a task that moves `url:` data cannot start. */
  readonly data: DataPlane | undefined;
}

/**
 * Before the sandbox is prepared: the attempt's own input directories made
 * and its filtered inputs linked. Throws (a start failure) when a `url:`
 * transfer has no data plane to go through.
 */
export async function prepareInputs(site: DataSite, transfers: AttemptTransfers): Promise<void> {
  const stored = [...transfers.downloads, ...transfers.uploads, ...transfers.checkpoints.map((c) => c.transfer)];
  if (!site.data && stored.length > 0)
    throw new Error(
      `${stored[0]!.url}: url: inputs and outputs, and checkpoints, need a data plane, which this run was not given (\`troupe run\` and a server's runs have one, over their owner's \`troupe credential\` DATA credentials)`,
    );
  await Promise.all(transfers.downloads.map((d) => mkdir(d.dir, { recursive: true })));
  // A checkpoint directory of the attempt's own is mounted where the task writes it (the runtime gives it to the
  // task's user); one in the output, or a path of the host's, is the task's to make.
  const mounted = transfers.checkpoints.filter((c) => c.mount !== undefined);
  await Promise.all(mounted.map((c) => mkdir(c.transfer.dir, { recursive: true })));
  for (const f of transfers.filtered) await linkMatching(f.from, f.dir, f.regex);
}

/**
 * While the sandbox comes up: the downloads, and the check that the outputs'
 * stores will take them (as OSMO's runtime checks before any transfer, so that
 * a long command does not run for outputs that cannot be kept); an event when
 * the downloads are done. On failure the attempt is to end with its data exit
 * code (`attempt.dataFailure`, returned false so that the caller stops it). A
 * stop aborts them.
 */
export async function stageData(site: DataSite, g: number, t: number, attempt: LiveAttempt, transfers: AttemptTransfers): Promise<boolean> {
  const signal = (attempt.transfers ??= new AbortController()).signal;
  const { downloads } = transfers;
  const uploads = [...transfers.uploads, ...transfers.checkpoints.map((c) => c.transfer)];
  try {
    const [report] = await Promise.all([
      downloads.length > 0 ? site.data!.download(downloads, signal) : undefined,
      uploads.length > 0 ? site.data!.check(uploads, signal) : undefined,
    ]);
    if (report && !signal.aborted) site.state.noteTask(g, t, `inputs downloaded: ${reportText(report, "from", downloads)}`);
    return true;
  } catch (error) {
    if (signal.aborted) return false;
    attempt.dataFailure = dataFailure(error, RuntimeExitCode.DOWNLOAD_FAILED);
    return false;
  }
}

/**
 * After the command: its outputs uploaded (unless the attempt was stopped or
 * ended some other way) and the outcome its end is decided by: a failed
 * upload fails a command that succeeded with the upload's code; one that
 * failed keeps its own code, the upload's failure added to its reason.
 */
export async function uploadOutputs(
  site: DataSite,
  g: number,
  t: number,
  attempt: LiveAttempt,
  uploads: UrlTransfer[],
  outcome: MemberOutcome,
): Promise<MemberOutcome> {
  if (outcome.kind !== "exited" || uploads.length === 0 || !site.data) return outcome;
  const signal = (attempt.transfers ??= new AbortController()).signal;
  if (signal.aborted) return outcome;
  try {
    const report = await site.data.upload(uploads, signal);
    site.state.noteTask(g, t, `outputs uploaded: ${reportText(report, "to", uploads)}`);
    return outcome;
  } catch (error) {
    if (signal.aborted) return outcome;
    return withUploadFailure(outcome, error, "its outputs were not uploaded");
  }
}

/**
 * After the command, what moves then, in order: the last checkpoints (of a
 * command that exited: a lost or evicted one's files may be out of reach),
 * then the outputs; the outcome its end is decided by.
 */
export async function afterCommand(
  site: DataSite,
  g: number,
  t: number,
  attempt: LiveAttempt,
  after: { uploads: UrlTransfer[]; checkpoints: CheckpointUploads | undefined },
  outcome: MemberOutcome,
): Promise<MemberOutcome> {
  let ended = outcome;
  const failure = await after.checkpoints?.finish(outcome.kind === "exited");
  if (failure && ended.kind === "exited") ended = withUploadFailure(ended, failure, "its last checkpoint was not uploaded");
  return uploadOutputs(site, g, t, attempt, after.uploads, ended);
}

/** A command's outcome once an upload after it failed: a success fails with the upload's code; a failure keeps its own, the upload's added to its reason. */
function withUploadFailure(outcome: Extract<MemberOutcome, { kind: "exited" }>, error: unknown, what: string): MemberOutcome {
  const failure = dataFailure(error, RuntimeExitCode.UPLOAD_FAILED);
  if (outcome.code !== 0) return { ...outcome, reason: [outcome.reason, `${what}: ${failure.message}`].filter(Boolean).join("; ") };
  return failure;
}

function dataFailure(error: unknown, code: number): Extract<MemberOutcome, { kind: "data-failed" }> {
  if (error instanceof DataTransferError) return { kind: "data-failed", code: error.exitCode, message: error.message };
  return { kind: "data-failed", code, message: (error as Error).message ?? String(error) };
}

/**
 * The files of `from` whose path (relative to it, "/"-separated) `regex`
 * matches from its start, hard-linked into `to` (copied where a link cannot
 * be made: another file system); the count.
 */
export async function linkMatching(from: string, to: string, regex: string): Promise<number> {
  const matcher = new RegExp(regex, "y");
  await mkdir(to, { recursive: true });
  let count = 0;
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(join(from, relative), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [];
      throw error;
    });
    for (const entry of entries) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        await walk(path);
        continue;
      }
      matcher.lastIndex = 0;
      if (!entry.isFile() || !matcher.test(path)) continue;
      const target = join(to, path);
      await mkdir(dirname(target), { recursive: true });
      await link(join(from, path), target).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "EXDEV" || error.code === "EPERM") return copyFile(join(from, path), target);
        throw error;
      });
      count++;
    }
  };
  await walk("");
  return count;
}
