/**
 * Kept tasks: task attempts that outlive the troupe process that started them
 * (the server's, so that a restart or a crash of the server does not end its
 * work). Each runs under a keeper (native/keeper.c, forked by troupe-spawner)
 * with a state directory of its own:
 *   exit     written once, by a rename, when the task has ended:
 *            {"code": N, "released": B} (B: its command was let start)
 *   control  a FIFO the keeper reads: a line "N" signals the task with N.
 *            Opening it for writing fails (ENXIO) once no keeper reads it.
 * A later troupe re-attaches with `KeptMember.attach`: the task's end is read
 * from `exit` (polled: one timer for every kept task of the process), its
 * stop goes through `control`.
 */
import { closeSync, constants, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.js";
import { attemptKeptDir, runKeptDir } from "../model/index.js";
import type { ExitInfo, PreparedMember, TaskLaunch } from "./types.js";

/** The state directory of a kept attempt, under its run's data directory. */
export function keptStateDir(dataDir: string, launch: Pick<TaskLaunch, "taskName" | "retryId">): string {
  return attemptKeptDir(dataDir, launch.taskName, launch.retryId);
}

export interface KeptExit {
  code: number;
  released: boolean;
}

export function readKeptExit(dir: string): KeptExit | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, "exit"), "utf8");
  } catch (error) {
    // None yet (the task runs on): polled every 200 ms. Anything else is odd, but asked again at the next poll.
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") log.debug({ err: error, dir }, "cannot read a kept task's exit record");
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<KeptExit>;
    if (typeof parsed.code === "number") return { code: parsed.code, released: parsed.released === true };
  } catch {
    // A torn file cannot happen (rename); anything else is not an exit record.
  }
  return undefined;
}

/** Writes `signal` to the keeper's control FIFO; false when no keeper reads it any more. */
export function signalKept(dir: string, signal: number): boolean {
  let fd: number;
  try {
    fd = openSync(join(dir, "control"), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    // ENXIO (no reader) or ENOENT (the keeper removed it as the task ended): no keeper, the answer asked for.
    return false;
  }
  try {
    writeSync(fd, `${signal}\n`);
    return true;
  } catch {
    // EPIPE: the keeper ended between the open and the write.
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Kills every kept attempt of a run (one that will not be resumed); returns how many were still alive. */
export function killKeptTasks(dataDir: string): number {
  let entries: string[];
  try {
    entries = readdirSync(runKeptDir(dataDir));
  } catch {
    // No kept/ directory: the run kept no task.
    return 0;
  }
  return entries.filter((entry) => signalKept(join(runKeptDir(dataDir), entry), SIGKILL)).length;
}

/**
 * Kills every kept attempt of a run that is still alive and waits (at most
 * `timeoutMs`) for their keepers to end: once they have, nothing of theirs
 * (a `podman run` still creating its container) can make anything any more.
 */
export async function endKeptTasks(dataDir: string, timeoutMs = 15_000): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync(runKeptDir(dataDir));
  } catch {
    // No kept/ directory: the run kept no task.
    return;
  }
  const alive = entries.map((entry) => join(runKeptDir(dataDir), entry)).filter((dir) => signalKept(dir, SIGKILL));
  for (const deadline = Date.now() + timeoutMs; alive.some(keeperAlive) && Date.now() < deadline;)
    await new Promise((resolve) => setTimeout(resolve, 50));
}

/** Whether a keeper still watches over the attempt (its FIFO has a reader). */
export function keeperAlive(dir: string): boolean {
  return signalKept(dir, 0);
}

const POLL_MS = 200;
const SIGTERM = 15;
const SIGKILL = 9;
/** An engine's stop has waited out its grace already: what ends after it does so in moments, not in this long. */
const STOP_CONFIRM_MS = 10_000;
/** How often a live keeper's task is looked for (KeptMemberOptions.present): a podman call each time. */
const PRESENCE_MS = 5_000;

/** A kept attempt seen from a troupe process that did not start it. */
export class KeptMember implements PreparedMember {
  readonly exited: Promise<ExitInfo>;
  private resolveExited!: (info: ExitInfo) => void;
  private ended = false;
  /** When its task was last looked for (`present`), and how many looks in a row found none. */
  private lookedAt = Date.now();
  private looking = false;
  private absences = 0;

  private constructor(
    readonly launch: TaskLaunch,
    readonly dir: string,
    private readonly options: KeptMemberOptions,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  /**
   * The attempt's handle, or undefined when its fate cannot be known: no exit
   * recorded and no keeper alive (it was never kept, or its keeper was killed).
   */
  static attach(launch: TaskLaunch, dir: string, options: KeptMemberOptions = {}): KeptMember | undefined {
    if (readKeptExit(dir) === undefined && !keeperAlive(dir) && readKeptExit(dir) === undefined) return undefined;
    const member = new KeptMember(launch, dir, options);
    watching.add(member);
    member.check();
    if (!member.ended && options.unreleased?.()) member.endUnreleased();
    pollSoon();
    return member;
  }

  /**
   * Its command was never let start, and no one will now: the process that
   * recorded its start ended before it released it (a window of moments),
   * and a re-attached attempt is only followed. It would wait at its barrier
   * for ever: it is ended, its task killed through its keeper.
   */
  private endUnreleased(): void {
    signalKept(this.dir, SIGKILL);
    void this.options.stop?.(0).catch(() => undefined);
    this.end({ code: 128 + SIGKILL, startError: "troupe ended between recording its start and releasing its command" });
  }

  /** Whether its end is still to come. */
  get running(): boolean {
    return !this.ended;
  }

  /** Its command runs already. */
  release(): void {}

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    if (this.options.stop) await this.stopThroughEngine(graceMs);
    else if (graceMs > 0) {
      signalKept(this.dir, SIGTERM);
      const timer = setTimeout(() => signalKept(this.dir, SIGKILL), graceMs);
      await this.exited;
      clearTimeout(timer);
    } else signalKept(this.dir, SIGKILL);
    await this.exited;
  }

  /**
   * The engine's stop, then, should the task not end: its keeper's. The
   * engine may not know the container yet (its `podman run` still creating
   * it when the stop comes, after a restart): that stop finds nothing, the
   * container comes up after it, and the task would never end. The keeper's
   * kill ends the command it runs (`podman run`); a container that outlives
   * it is the runtime's to remove (it removes what is left of a resumed run).
   */
  private async stopThroughEngine(graceMs: number): Promise<void> {
    await this.options.stop!(graceMs);
    let timer: NodeJS.Timeout | undefined;
    const confirmed = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.options.stopConfirmMs ?? STOP_CONFIRM_MS);
      void this.exited.then(() => resolve(true));
    });
    const ended = await confirmed;
    clearTimeout(timer);
    if (!ended) signalKept(this.dir, SIGKILL);
  }

  /** Called by the poller: ended, still kept, or lost. */
  check(deep = false): void {
    if (this.ended) return;
    const exit = readKeptExit(this.dir);
    if (exit) return this.end(this.options.exitInfo?.(exit) ?? exitInfoOf(exit));
    if (!deep) return;
    if (keeperAlive(this.dir)) return this.lookForTask();
    // The keeper may have written its record between the two looks.
    const late = readKeptExit(this.dir);
    if (late) return this.end(this.options.exitInfo?.(late) ?? exitInfoOf(late));
    this.end({ code: 128 + SIGKILL, lost: "its keeper ended without recording how the task ended (was it killed?)" });
  }

  /**
   * A keeper alive for a task that is gone would keep the attempt for ever
   * (a `podman run` that never returns once its container was removed under
   * it): its task is looked for now and then, and once it was missing twice
   * in a row, the keeper is killed and the attempt ends, lost, or as the task
   * itself said it ended where it did (`knownEnd`).
   */
  private lookForTask(): void {
    const { present } = this.options;
    const every = this.options.presenceMs ?? PRESENCE_MS;
    if (!present || this.looking || Date.now() - this.lookedAt < every) return;
    this.looking = true;
    void present()
      .then(
        (found) => {
          if (found !== undefined) this.absences = found ? 0 : this.absences + 1;
        },
        // Not an answer (podman failed, timed out): asked again next time, the count kept.
        () => undefined,
      )
      .finally(() => {
        this.looking = false;
        this.lookedAt = Date.now();
        if (this.ended || this.absences < 2) return;
        const exit = readKeptExit(this.dir);
        if (exit) return this.end(this.options.exitInfo?.(exit) ?? exitInfoOf(exit));
        signalKept(this.dir, SIGKILL);
        const known = this.options.knownEnd?.();
        this.end(
          known ?? {
            code: 128 + SIGKILL,
            lost: `its keeper waited on a task that is gone (${this.options.what ?? "its process"}): the keeper was killed`,
          },
        );
      });
  }

  private end(info: ExitInfo): void {
    this.ended = true;
    watching.delete(this);
    this.resolveExited(info);
  }
}

export interface KeptMemberOptions {
  /** How to stop it instead of signals through the keeper (a container is stopped by its engine). */
  stop?: (graceMs: number) => Promise<void>;
  /** How long after the engine's stop the task may take to end before its keeper kills it (default STOP_CONFIRM_MS). */
  stopConfirmMs?: number;
  /** What its exit record means (a container knows more, e.g. an out-of-memory kill). */
  exitInfo?: (exit: KeptExit) => ExitInfo;
  /**
   * Whether the task the keeper waits on is still there (a container: whether
   * its engine still knows it); undefined when that cannot be said now. Asked
   * every `presenceMs` (default PRESENCE_MS) while the keeper lives.
   */
  present?: () => Promise<boolean | undefined>;
  presenceMs?: number;
  /** What is gone, for the reason of an attempt ended because it was (e.g. "podman no longer knows its container"). */
  what?: string;
  /** How the task ended as far as it said so itself (a container's troupe-init verdict), for an attempt ended that way. */
  knownEnd?: () => ExitInfo | undefined;
  /** Whether its command was never released (a container: no release's nonce beside its control directory). */
  unreleased?: () => boolean;
}

export function exitInfoOf(exit: KeptExit): ExitInfo {
  return exit.released ? { code: exit.code } : { code: exit.code, startError: "stopped before its command started" };
}

// One timer for every kept member of this process: exit records every POLL_MS, keepers' liveness every 5th time.
const watching = new Set<KeptMember>();
let timer: NodeJS.Timeout | undefined;
let round = 0;

function pollSoon(): void {
  if (timer || watching.size === 0) return;
  timer = setTimeout(() => {
    timer = undefined;
    round += 1;
    for (const member of [...watching]) member.check(round % 5 === 0);
    pollSoon();
  }, POLL_MS);
}
