/**
 * One task attempt in a container, whatever the engine: up once troupe-init
 * says it is ready (and its bridge port is isolated where that is asked for),
 * released by the "go" file (with the attempt's nonce), ended as troupe-init's
 * verdict says (the command's exit code, an out-of-memory kill), or with the
 * engine's exit code when there is none (verdict.ts). Nothing the task writes
 * into the control directory counts: `ready` is read before the release.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ExitInfo, PreparedMember, TaskLaunch } from "../types.js";
import { gpuCdiKind, type StartedContainer } from "./backend.js";
import { watchControlDir, type WatchFn } from "./control-watch.js";
import { readVerdict, releasedExit, releaseWithNonce, requestRestart, stoppedForRestart } from "./verdict.js";

export class ContainerMember implements PreparedMember {
  readonly exited: Promise<ExitInfo>;
  /** Resolves with the host-side index of the container's interface peer once troupe-init runs. */
  readonly ready: Promise<number>;
  /** The nonce of the release, once released. */
  private nonce: string | undefined;
  /** The key of a restart in place of this release (troupe-init's, with the nonce). */
  private restartKey: string | undefined;
  private restarting = false;
  /** troupe-init said it was ready (before the release: nothing of the task's could have written it). */
  private sawReady = false;
  private ended = false;

  constructor(
    readonly launch: TaskLaunch,
    private readonly container: StartedContainer,
    private readonly controlDir: string,
    /** How the control directory is watched (a test's that fails as a machine out of inotify instances does). */
    private readonly watch?: WatchFn,
  ) {
    const ready = this.waitReady();
    this.ready = container.ready ? Promise.all([ready, container.ready]).then(([peer]) => peer) : ready;
    this.exited = container.ended.then((end) => {
      this.ended = true;
      return this.exitInfo(end);
    });
  }

  private waitReady(): Promise<number> {
    const readyFile = join(this.controlDir, "ready");
    return new Promise((resolve, reject) => {
      // troupe-init writes a file of another name and renames it: only the rename's event (or one without a name) says anything.
      const watcher = watchControlDir(this.controlDir, (name) => (name === null || name === "ready") && check(), this.watch);
      // Read once, before the release: once the command runs, `ready` is the task's to replace (by a link to a FIFO...).
      const check = () => {
        if (this.sawReady) return true;
        if (!existsSync(readyFile)) return false;
        watcher.close();
        this.sawReady = true;
        const match = /iflink (\d+)/.exec(readFileSync(readyFile, "utf8"));
        resolve(Number(match?.[1] ?? 0));
        return true;
      };
      check();
      void this.container.ended.then((end) => {
        if (check()) return;
        watcher.close();
        reject(
          new Error(end.error ?? `the container ended before its command could start: ${this.lastLogLine() ?? `exit code ${end.code}`}`),
        );
      });
    });
  }

  private exitInfo(end: { code: number; error?: string }): ExitInfo {
    if (end.error !== undefined) return { code: end.code, startError: end.error };
    if (!this.sawReady)
      return { code: end.code, startError: `the container did not start: ${this.lastLogLine() ?? `exit code ${end.code}`}` };
    if (this.nonce === undefined) return { code: end.code, startError: "stopped before its command started" };
    return releasedExit(end.code, readVerdict(this.controlDir, this.nonce));
  }

  /** The engine's last word (its error, when the container could not start), with what to do where troupe knows. */
  private lastLogLine(): string | undefined {
    let line: string | undefined;
    try {
      line = readFileSync(this.launch.logPath, "utf8").slice(-2000).trim().split("\n").pop() || undefined;
    } catch {
      // No log: the engine said nothing.
      return undefined;
    }
    if (line && /unresolvable CDI devices/.test(line))
      line += ` (the engine has no CDI spec for the GPUs: generate one, e.g. \`nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml\`, or name their kind in TROUPE_GPU_CDI_KIND, now ${gpuCdiKind()})`;
    return line;
  }

  release(): void {
    ({ nonce: this.nonce, restartKey: this.restartKey } = releaseWithNonce(this.controlDir));
  }

  /**
   * OSMO's restart in place: troupe-init stops the command (SIGTERM, every
   * process of the container killed after `graceMs`), says so with the
   * release's nonce, and waits for the next release in the same container.
   */
  readonly restart = (graceMs: number): Promise<boolean> => {
    const { nonce, restartKey } = this;
    if (this.ended || this.restarting || nonce === undefined || restartKey === undefined) return Promise.resolve(false);
    this.restarting = true;
    return new Promise<boolean>((resolve) => {
      const done = (stopped: boolean) => {
        watcher.close();
        this.restarting = false;
        // Until the next release, a stop is a stop before the command started.
        if (stopped) this.nonce = this.restartKey = undefined;
        resolve(stopped);
      };
      const watcher = watchControlDir(
        this.controlDir,
        (name) => {
          if ((name === null || name === "stopped") && stoppedForRestart(this.controlDir, nonce)) done(true);
        },
        this.watch,
      );
      requestRestart(this.controlDir, restartKey, graceMs);
      // The container ended first: its end is the attempt's, as usual.
      void this.container.ended.then(() => this.restarting && done(false));
    });
  };

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    if (graceMs > 0 && this.nonce !== undefined) await this.container.stop(graceMs);
    else await this.container.kill();
    await this.exited;
  }
}
