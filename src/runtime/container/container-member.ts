/**
 * One task attempt in a container: created and started with troupe-init as
 * its entrypoint (holding the command until release), its output followed
 * into the log file, its end read from the engine, then removed.
 */
import { createWriteStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ExitInfo, PreparedMember, RunContext, TaskLaunch } from "../types.js";
import { LogDemuxer, type DockerApi } from "./docker-api.js";

/** How long the log stream may lag behind the container's end before troupe stops waiting for it. */
const LOG_DRAIN_MS = 10_000;

export class ContainerMember implements PreparedMember {
  readonly exited: Promise<ExitInfo>;
  private released = false;
  private ended = false;
  /** Bytes of output received live, to find what the live stream missed. */
  private received = 0;

  constructor(
    readonly launch: TaskLaunch,
    private readonly api: DockerApi,
    private readonly id: string,
    private readonly controlDir: string,
    run: RunContext,
  ) {
    const log = createWriteStream(launch.logPath, { flags: "a" });
    const logsDone = this.followLogs(log, run);
    this.exited = this.watch(logsDone, log, run);
  }

  private async followLogs(log: NodeJS.WritableStream, run: RunContext): Promise<void> {
    try {
      const stream = await this.api.followLogs(this.id);
      const demux = new LogDemuxer((chunk) => this.output(log, run, chunk));
      for await (const data of stream) demux.push(data as Buffer);
    } catch (error) {
      log.write(`troupe: the log stream of this container broke: ${(error as Error).message}\n`);
    }
  }

  private output(log: NodeJS.WritableStream, run: RunContext, chunk: Buffer): void {
    this.received += chunk.length;
    log.write(chunk);
    run.onOutput?.(this.launch, chunk);
  }

  /**
   * A followed log stream may end before the engine has delivered the last
   * lines of a container that just exited (seen with podman): the whole log,
   * read once the container has stopped, supplies what the stream missed.
   */
  private async completeLog(log: NodeJS.WritableStream, run: RunContext): Promise<void> {
    try {
      const whole = await this.api.logs(this.id);
      if (whole.length > this.received) this.output(log, run, whole.subarray(this.received));
    } catch (error) {
      log.write(`troupe: could not check this container's log for completeness: ${(error as Error).message}\n`);
    }
  }

  private async watch(logsDone: Promise<void>, log: NodeJS.WritableStream, run: RunContext): Promise<ExitInfo> {
    let info: ExitInfo;
    try {
      const code = await this.api.waitContainer(this.id);
      const state = (await this.api.inspectContainer(this.id)).State;
      info = { code };
      if (state.OOMKilled) info.reason = "killed: out of memory (the task's memory limit)";
      else if (!this.released) info = { code, startError: "stopped before its command started" };
    } catch (error) {
      info = { code: 128, startError: `lost the container: ${(error as Error).message}` };
    }
    this.ended = true;
    // Complete logs before the attempt counts as ended; a stream that never ends must not hang the run.
    await Promise.race([logsDone, new Promise((resolve) => setTimeout(resolve, LOG_DRAIN_MS).unref())]);
    await this.completeLog(log, run);
    await new Promise<void>((resolve) => log.end(resolve));
    await this.api.removeContainer(this.id).catch(() => undefined);
    return info;
  }

  release(): void {
    this.released = true;
    writeFileSync(join(this.controlDir, "go"), "");
  }

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    if (graceMs > 0 && this.released) await this.api.stopContainer(this.id, Math.max(1, Math.ceil(graceMs / 1000))).catch(() => undefined);
    else await this.api.killContainer(this.id).catch(() => undefined);
    await this.exited;
  }
}
