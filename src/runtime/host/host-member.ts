/**
 * One task attempt on the host: its bwrap sandbox, bwrap's status channel
 * (the sandbox's PID and the command's exit code) and the barrier that holds
 * the command until the group is released.
 */
import { readFileSync } from "node:fs";
import type { ExitInfo, PreparedMember, RunContext, TaskLaunch } from "../types.js";
import { jsonLines } from "../../util/json-lines.js";
import type { SandboxProcess, SandboxStart, StartSandboxProcess } from "./sandbox-process.js";

/** How long a sandbox whose PID 1 was killed may take to end before the process that started it is killed too. */
const KILL_CONFIRM_MS = 2_000;

export class HostMember implements PreparedMember {
  readonly ready: Promise<void>;
  readonly exited: Promise<ExitInfo>;
  private readonly process: SandboxProcess;
  /** PID (in troupe's view) of the sandbox's PID 1; the command is its child. */
  private sandboxPid: number | undefined;
  private commandExit: number | undefined;
  private released = false;
  /** Started released (SandboxStart.released): the first release() has nothing to send. */
  private releasedAtStart: boolean;
  private ended = false;
  /** troupe killed the sandbox (a stop): a released command that reported no exit was killed, not a failed setup. */
  private killed = false;
  /** A restart in place asked for and not yet done: resolves when the sandbox waits for its next release. */
  private restarting: ((done: boolean) => void) | undefined;
  readonly restart?: (graceMs: number) => Promise<boolean>;

  constructor(
    readonly launch: TaskLaunch,
    command: Pick<SandboxStart, "argv" | "directives" | "keep" | "supervised" | "released">,
    run: RunContext,
    start: StartSandboxProcess,
    configureNetwork: ((pid: number) => Promise<void>) | undefined,
  ) {
    this.releasedAtStart = command.released === true;
    let resolveStarted!: (pid: number) => void;
    let rejectStarted!: (error: Error) => void;
    const started = new Promise<number>((resolve, reject) => ((resolveStarted = resolve), (rejectStarted = reject)));
    /** The sandbox said its PID: `started` is settled, and an end is no failure to start. */
    let sandboxUp = false;
    let resolveExited!: (info: ExitInfo) => void;
    this.exited = new Promise((resolve) => (resolveExited = resolve));

    const onOutput = run.onOutput;
    this.process = start(
      // A kept task's output goes to its log only: it must not depend on this process.
      { ...command, logPath: launch.logPath, live: onOutput !== undefined && command.keep === undefined, secrets: launch.secrets },
      {
        // bwrap's status channel (and troupe-spawner's own sandbox's): one JSON object per line.
        status: jsonLines((message) => {
          if (typeof message["child-pid"] === "number") {
            sandboxUp = true;
            resolveStarted(message["child-pid"]);
          }
          if (typeof message["exit-code"] === "number") this.commandExit = message["exit-code"];
          if (typeof message.stopped === "number") this.stoppedForRestart();
        }),
        output: onOutput && command.keep === undefined ? (chunk) => onOutput(launch, chunk) : undefined,
        exit: (code, error) => {
          this.ended = true;
          if (error !== undefined) {
            this.restarting?.(false);
            const reason = error.startsWith("cannot start bwrap")
              ? `${error} (the host runtime needs bubblewrap: apt-get install bubblewrap)`
              : error;
            rejectStarted(new Error(reason));
            resolveExited({ code: 127, startError: reason });
            return;
          }
          this.restarting?.(false);
          // Read from its log only when it never came up (not at every end: a file read per task).
          if (!sandboxUp) rejectStarted(new Error(this.setupFailure()));
          if (this.killed && !this.released) {
            // Stopped at the barrier. (bwrap may report its own child's end: the sandbox's, not a command's.)
            resolveExited({ code: code ?? 128, startError: "stopped before its command started" });
          } else if (this.commandExit === undefined && this.killed) {
            // Killed with its sandbox (a forced stop): the sandbox's PID 1 had no time to report the command's end.
            resolveExited({ code: 128 + 9 });
          } else if (this.commandExit === undefined) {
            // The command never ran: bwrap itself failed, or we stopped it at the barrier. (Started released, a
            // failed setup may be told before troupe has released it.)
            const setupFailed = this.released || this.releasedAtStart;
            resolveExited({ code: code ?? 128, startError: setupFailed ? this.setupFailure() : "stopped before its command started" });
          } else resolveExited({ code: this.commandExit });
        },
      },
    );
    this.ready = started.then(async (pid) => {
      this.sandboxPid = pid;
      if (configureNetwork) await configureNetwork(pid);
    });
    // The start's failure is the member's to report (its ready rejects); what it started is ended here.
    this.ready.catch(() => this.kill());
    const restart = this.process.restart?.bind(this.process);
    if (restart) this.restart = (graceMs) => this.restartInPlace(restart, graceMs);
  }

  /**
   * OSMO's restart in place: the command is stopped (SIGTERM, then every
   * process of the sandbox killed after `graceMs`) and the sandbox, its files
   * and its address kept for the next `release()`. False when the attempt
   * ended first (its command's own end is then its exit, as usual).
   */
  private restartInPlace(restart: (graceMs: number) => void, graceMs: number): Promise<boolean> {
    if (this.ended || !this.released || this.restarting) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.restarting = resolve;
      restart(graceMs);
    });
  }

  /** The sandbox stopped the command for a restart: what comes next is a new release, not an exit. */
  private stoppedForRestart(): void {
    this.commandExit = undefined;
    this.released = false;
    const done = this.restarting;
    this.restarting = undefined;
    done?.(true);
  }

  /** bwrap's own complaint, the last line of the log when the command never ran. */
  private setupFailure(): string {
    let message: string | undefined;
    try {
      message = readFileSync(this.launch.logPath, "utf8").slice(-2000).trim().split("\n").pop();
    } catch {
      // No log (nothing was written): the general reason below.
      message = undefined;
    }
    return message ? `sandbox setup failed: ${message}` : "the sandbox ended before its command started";
  }

  release(): void {
    this.released = true;
    if (this.releasedAtStart) {
      this.releasedAtStart = false;
      return;
    }
    this.process.release();
  }

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    const done = this.exited.then(() => undefined);
    const command = this.commandPid();
    if (graceMs > 0 && this.released && command !== undefined) {
      this.process.signal("SIGTERM", command);
      const timer = setTimeout(() => this.kill(), graceMs);
      await done;
      clearTimeout(timer);
      return;
    }
    this.kill();
    await done;
  }

  /** SIGKILL to the sandbox's PID 1 ends every process of the task's PID namespace. */
  private kill(): void {
    this.killed = true;
    if (this.sandboxPid === undefined) return this.process.signal("SIGKILL");
    // Its end is then reported once the kernel has ended every process of the namespace (bwrap waits for its PID 1,
    // whose exit waits for them); killing bwrap too would report it while they are still being killed.
    this.process.signal("SIGKILL", this.sandboxPid);
    const straggler = setTimeout(() => this.process.signal("SIGKILL"), KILL_CONFIRM_MS);
    void this.exited.then(() => clearTimeout(straggler));
  }

  private commandPid(): number | undefined {
    const pid = this.sandboxPid;
    if (pid === undefined) return undefined;
    try {
      const first = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")[0]);
      return Number.isInteger(first) && first > 0 ? first : undefined;
    } catch {
      // The sandbox has ended: no command to name.
      return undefined;
    }
  }
}
