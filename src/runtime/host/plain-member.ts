/**
 * A task attempt as a plain process group, for machines without bubblewrap:
 * no namespaces, so tasks share /tmp and the network and `files:` cannot be
 * placed. troupe says so once; the run still works, which is what a first
 * `troupe run` on a fresh machine needs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { constants } from "node:os";
import { hasMaskable } from "../../util/secret-mask.js";
import { MaskedLog } from "../masked-log.js";
import { TASK_START_DIRECTORY } from "./sandbox.js";
import type { ExitInfo, PreparedMember, RunContext, TaskLaunch } from "../types.js";

export class PlainMember implements PreparedMember {
  readonly exited: Promise<ExitInfo>;
  private child: ChildProcess | undefined;
  private settle!: (info: ExitInfo) => void;
  private stopping = false;

  constructor(
    readonly launch: TaskLaunch,
    private readonly env: Record<string, string>,
    private readonly run: RunContext,
  ) {
    this.exited = new Promise((resolve) => (this.settle = resolve));
  }

  release(): void {
    if (this.stopping) return;
    const { launch, run } = this;
    const masked = hasMaskable(launch.secrets);
    const direct = run.onOutput === undefined && !masked;
    const logFd = direct ? openSync(launch.logPath, "a") : undefined;
    let child: ChildProcess;
    try {
      // Its own process group, so that stopping it reaches what it started.
      child = spawn(launch.argv[0] as string, launch.argv.slice(1), {
        // Where a sandboxed task starts too, so that a workflow means the same with or without bubblewrap.
        cwd: TASK_START_DIRECTORY,
        env: this.env,
        detached: true,
        stdio: ["ignore", logFd ?? "pipe", logFd ?? "pipe"],
      });
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    this.child = child;
    const live = run.onOutput && ((chunk: Buffer) => run.onOutput!(launch, chunk));
    const log = direct ? undefined : new MaskedLog(launch.logPath, launch.secrets ?? [], live);
    if (log) {
      const forward = (chunk: Buffer) => log.write(chunk);
      child.stdout!.on("data", forward);
      child.stderr!.on("data", forward);
    }
    let startError: string | undefined;
    child.on("error", (error) => (startError = `cannot start ${launch.argv[0]}: ${error.message}`));
    child.on("close", (code, signal) => {
      const info: ExitInfo = startError
        ? { code: 127, startError }
        : { code: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0) };
      if (log) log.end(() => this.settle(info));
      else this.settle(info);
    });
  }

  async stop(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child) {
      // Never started: nothing to stop.
      this.stopping = true;
      this.settle({ code: 128, startError: "stopped before its command started" });
      return;
    }
    if (child.exitCode !== null || child.signalCode !== null) return;
    const group = (signal: NodeJS.Signals) => {
      try {
        process.kill(-(child.pid as number), signal);
      } catch {
        // Already gone.
      }
    };
    group(graceMs > 0 ? "SIGTERM" : "SIGKILL");
    const timer = graceMs > 0 ? setTimeout(() => group("SIGKILL"), graceMs) : undefined;
    await this.exited;
    if (timer) clearTimeout(timer);
  }
}
