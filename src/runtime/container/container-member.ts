/**
 * One task attempt in a container, whatever the engine: up once troupe-init
 * says it is ready (and its bridge port is isolated where that is asked for),
 * released by the "go" file, ended with the engine's exit code and what
 * troupe-init noted (an out-of-memory kill).
 */
import { existsSync, readFileSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ExitInfo, PreparedMember, TaskLaunch } from "../types.js";
import { gpuCdiKind, type StartedContainer } from "./backend.js";

export class ContainerMember implements PreparedMember {
  readonly exited: Promise<ExitInfo>;
  /** Resolves with the host-side index of the container's interface peer once troupe-init runs. */
  readonly ready: Promise<number>;
  private released = false;
  private ended = false;

  constructor(
    readonly launch: TaskLaunch,
    private readonly container: StartedContainer,
    private readonly controlDir: string,
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
      // troupe-init writes `.ready` and renames it: only the rename's event (or one without a name) says anything.
      const watcher = watch(this.controlDir, (_, name) => (name === null || name === "ready") && check());
      const check = () => {
        if (!existsSync(readyFile)) return false;
        watcher.close();
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
    if (!existsSync(join(this.controlDir, "ready")))
      return { code: end.code, startError: `the container did not start: ${this.lastLogLine() ?? `exit code ${end.code}`}` };
    if (!this.released) return { code: end.code, startError: "stopped before its command started" };
    if (existsSync(join(this.controlDir, "oom"))) return { code: end.code, reason: "killed: more memory than its limit" };
    return { code: end.code };
  }

  /** The engine's last word (its error, when the container could not start), with what to do where troupe knows. */
  private lastLogLine(): string | undefined {
    let line: string | undefined;
    try {
      line = readFileSync(this.launch.logPath, "utf8").slice(-2000).trim().split("\n").pop() || undefined;
    } catch {
      return undefined;
    }
    if (line && /unresolvable CDI devices/.test(line))
      line += ` (the engine has no CDI spec for the GPUs: generate one, e.g. \`nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml\`, or name their kind in TROUPE_GPU_CDI_KIND, now ${gpuCdiKind()})`;
    return line;
  }

  release(): void {
    this.released = true;
    writeFileSync(join(this.controlDir, "go"), "");
  }

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    if (graceMs > 0 && this.released) await this.container.stop(graceMs);
    else await this.container.kill();
    await this.exited;
  }
}
