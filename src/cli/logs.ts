/**
 * `troupe logs RUN`: the complete output of a run's tasks, each line of
 * several tasks prefixed as the live view prefixes them; with `-f`, followed
 * as the tasks write (new attempts of a task too) until the run has ended and
 * every log has been read to its end.
 */
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { Command } from "commander";
import { NotFoundError } from "../errors/index.js";
import type { RunStore } from "../store/index.js";
import type { AttemptRecord } from "../model/index.js";
import { isRunOwnerAlive } from "../util/process-identity.js";
import { isClosed, writeOut } from "./output.js";
import { action, colorsFor, parseNonNegativeInt } from "./shared.js";
import { isFinal } from "../model/index.js";

const POLL_MS = 100;
const CHUNK = 1024 * 1024;
const OWNER_CHECK_MS = 1000;
const ATTEMPTS_POLL_MS = 500;

interface LogsOptions {
  task?: string;
  retryId?: number;
  lines?: number;
  follow: boolean;
}

export function logsCommand(): Command {
  return new Command("logs")
    .description("print the complete output (stdout and stderr) of a run's tasks; -f follows them until the run ends")
    .argument("<run>", "run id, or a unique prefix of one")
    .option("--task <name>", "only this task")
    .option("--retry-id <n>", "this attempt (default: the latest)", parseNonNegativeInt("--retry-id"))
    .option("-n, --lines <n>", "only the last N lines of each log", parseNonNegativeInt("-n"))
    .option("-f, --follow", "go on printing as the tasks write (their next attempts too), until the run ends", false)
    .addHelpText(
      "after",
      `
Examples:
  $ troupe logs grouped-workflow-communication-1
  $ troupe logs grouped-workflow-communication-1 --task client -n 20
  $ troupe logs ddp-train-3 -f`,
    )
    .action(
      action(async (id: string, options: LogsOptions) => {
        const [{ openStore }, store, { taskPrefixes }] = await Promise.all([
          import("./home.js"),
          import("../store/index.js"),
          import("./run-view.js"),
        ]);
        const { store: history } = openStore();
        try {
          const runId = history.resolveRunId(id);
          if (runId === undefined)
            throw new NotFoundError("E_RUN_NOT_FOUND", `no run \`${id}\` (or the prefix matches several)`, "`troupe list` shows the runs");
          const attempts = history.attempts(runId);
          const shown = chosenAttempts(attempts, runId, options);
          const taskNames = [...new Set(attempts.map((a) => a.task))];
          const several = options.task === undefined && taskNames.length > 1;
          const printer = new LogPrinter(several ? taskPrefixes(taskNames, colorsFor(process.stdout)) : undefined);
          for (const attempt of shown) {
            if (attempt.reused_from)
              process.stderr.write(
                `troupe: task ${attempt.task} did not run in ${runId}: it is reused from ${attempt.reused_from}, whose log this is\n`,
              );
          }
          if (!options.follow) {
            for (const attempt of shown) {
              if (!existsSync(attempt.log_path)) continue;
              const text = store.readFrom(attempt.log_path, store.tailOffset(attempt.log_path, options.lines));
              // A reader that went away (`troupe logs RUN | head`) ends the command: nothing more to print.
              if (!(await printer.print(attempt.task, text)) || !(await printer.end(attempt.task))) break;
            }
            return 0;
          }
          await follow(history, runId, shown, options, printer, (path) => store.tailOffset(path, options.lines));
          return 0;
        } finally {
          history.close();
        }
      }),
    );
}

/** The attempts asked for: of `--task` or every task, `--retry-id` or each task's latest. */
function chosenAttempts(all: AttemptRecord[], runId: string, options: LogsOptions): AttemptRecord[] {
  let attempts = all;
  if (options.task !== undefined) {
    attempts = attempts.filter((a) => a.task === options.task);
    if (attempts.length === 0) throw new NotFoundError("E_TASK_NOT_FOUND", `run ${runId} has no task \`${options.task}\``);
  }
  if (options.retryId !== undefined) {
    attempts = attempts.filter((a) => a.retry_id === options.retryId);
    if (attempts.length === 0) throw new NotFoundError("E_ATTEMPT_NOT_FOUND", `no attempt with retry id ${options.retryId}`);
    return attempts;
  }
  return latestOfEach(attempts);
}

function latestOfEach(attempts: AttemptRecord[]): AttemptRecord[] {
  const latest = new Map<string, AttemptRecord>();
  for (const a of attempts) if ((latest.get(a.task)?.retry_id ?? -1) < a.retry_id) latest.set(a.task, a);
  return [...latest.values()];
}

/** Writes task output to stdout: as it is for one task, line by line behind each task's prefix for several. */
class LogPrinter {
  private readonly partial = new Map<string, string>();
  /** Per task: a character cut in two between reads is printed whole. */
  private readonly decoders = new Map<string, StringDecoder>();

  /** `prefixes`: each task's, when several are shown; none for one. */
  constructor(private readonly prefixes: Map<string, string> | undefined) {}

  /** False once nobody reads the output any more. */
  async print(task: string, bytes: Buffer): Promise<boolean> {
    if (bytes.length === 0) return !isClosed(process.stdout);
    if (!this.prefixes) return writeOut(process.stdout, bytes);
    let decoder = this.decoders.get(task);
    if (!decoder) this.decoders.set(task, (decoder = new StringDecoder("utf8")));
    const lines = ((this.partial.get(task) ?? "") + decoder.write(bytes)).split("\n");
    this.partial.set(task, lines.pop() ?? "");
    if (lines.length === 0) return true;
    const prefix = this.prefixes.get(task) ?? `${task} |`;
    return writeOut(process.stdout, lines.map((line) => `${prefix} ${line}\n`).join(""));
  }

  /** The task's log has ended: a last line without a newline is printed too. */
  async end(task: string): Promise<boolean> {
    const rest = this.partial.get(task);
    if (!rest) return true;
    this.partial.delete(task);
    return this.print(task, Buffer.from(`${rest}\n`));
  }

  /** A line of troupe's own among the tasks' output (`--- retry 1 ---`); on stderr when one task's bytes are shown as they are. */
  async note(task: string, text: string): Promise<boolean> {
    if (!this.prefixes) {
      if (!isClosed(process.stderr)) process.stderr.write(`troupe: ${task}: ${text}\n`);
      return !isClosed(process.stdout);
    }
    if (!(await this.end(task))) return false;
    return this.print(task, Buffer.from(`${colorsFor(process.stdout).dim(text)}\n`));
  }
}

/**
 * Prints the tasks' logs as they grow: each task's attempt from where `start` says, then its later
 * attempts from their beginning, until the run has ended and every log is read to its end.
 */
async function follow(
  store: RunStore,
  runId: string,
  shown: AttemptRecord[],
  options: LogsOptions,
  printer: LogPrinter,
  start: (path: string) => number,
): Promise<void> {
  const followed = new Map(shown.map((a) => [a.task, { attempt: a, position: existsSync(a.log_path) ? start(a.log_path) : 0 }]));
  const buffer = Buffer.alloc(CHUNK);
  let checkedOwner = Date.now();
  let attemptsReadAt = 0;
  for (;;) {
    // A run whose process dies while followed would never end: it is settled as orphans are (once a second).
    if (Date.now() - checkedOwner >= OWNER_CHECK_MS) {
      checkedOwner = Date.now();
      store.settleOrphanedRuns(isRunOwnerAlive);
    }
    // The run's status before this round's reads: once it had ended, what they read is the rest of every log.
    const ended = isFinal(store.runHeader(runId)?.status ?? "FAILED");
    let read = 0;
    // --retry-id: that attempt only; otherwise a task's next attempt is followed once it appears (looked for
    // a few times a second, and at the end: reading every attempt of a large run each round would cost more).
    const lookForAttempts = options.retryId === undefined && (ended || Date.now() - attemptsReadAt >= ATTEMPTS_POLL_MS);
    if (lookForAttempts) attemptsReadAt = Date.now();
    const latest = lookForAttempts ? latestOfEach(store.attempts(runId)) : [];
    for (const attempt of latest) {
      const current = followed.get(attempt.task);
      if (current === undefined && options.task !== undefined) continue;
      if (current && current.attempt.retry_id >= attempt.retry_id) continue;
      if (current) {
        read += await drain(current, buffer, printer);
        if (!(await printer.note(attempt.task, `--- retry ${attempt.retry_id} ---`))) return;
      }
      followed.set(attempt.task, { attempt, position: 0 });
    }
    for (const entry of followed.values()) {
      const n = await drain(entry, buffer, printer);
      if (n < 0) return;
      read += n;
    }
    if (ended && read === 0) {
      for (const task of followed.keys()) if (!(await printer.end(task))) return;
      return;
    }
    if (read === 0) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Prints what the attempt's log has beyond `position`; the bytes read, or -1 once nobody reads the output. */
async function drain(entry: { attempt: AttemptRecord; position: number }, buffer: Buffer, printer: LogPrinter): Promise<number> {
  if (!existsSync(entry.attempt.log_path)) return 0;
  const fd = openSync(entry.attempt.log_path, "r");
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, entry.position);
      if (n === 0) return total;
      entry.position += n;
      total += n;
      if (!(await printer.print(entry.attempt.task, Buffer.from(buffer.subarray(0, n))))) return -1;
    }
  } finally {
    closeSync(fd);
  }
}
