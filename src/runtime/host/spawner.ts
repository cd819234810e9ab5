/**
 * Client of troupe-spawner (native/spawner.c), the small helper process that
 * forks the task sandboxes so that troupe's Node process never forks: one
 * helper per process (sharedSpawner), one pipe each way, frames of a 4-byte
 * little-endian length and `op NUL id NUL rest` (the protocol is described
 * in the C file). Built by `npm run build` when a C compiler is there; without
 * it (or with TROUPE_SPAWNER=node) the host runtime uses Node's child_process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { hasMaskable } from "../../util/secret-mask.js";
import { MaskedLog } from "../masked-log.js";
import { builtHelper } from "../native-helpers.js";
import { signalNumber, type SandboxProcess, type SandboxProcessEvents, type StartSandboxProcess } from "./sandbox-process.js";

/** The events of a process whose output goes through `log`: its end is told once the log is on disk. */
function maskedEvents(log: MaskedLog, events: SandboxProcessEvents): SandboxProcessEvents {
  return {
    status: (chunk) => events.status(chunk),
    output: (chunk) => log.write(chunk),
    exit: (code, error) => log.end(() => events.exit(code, error)),
  };
}

/** Where the built helper is, or undefined when it was not built or is switched off. */
export function spawnerPath(): string | undefined {
  return process.env.TROUPE_SPAWNER === "node" ? undefined : builtHelper("troupe-spawner");
}

/** The helper every runtime of this process uses, by its path (sharedSpawner). */
const shared = new Map<string, Spawner>();

/**
 * One helper for every run and runtime of this process (a server starts a
 * runtime per run, and each fork of Node for a helper cost its main thread
 * about 6 ms), started on first use, and again if it ended. It does not keep
 * the process alive while no task runs; it ends when the process does (its
 * input closes): sandboxes die with it, kept tasks go on under their keepers.
 */
export function sharedSpawner(path: string): Spawner {
  let spawner = shared.get(path);
  if (!spawner || spawner.ended) {
    spawner = new Spawner(path);
    shared.set(path, spawner);
  }
  return spawner;
}

const MAX_FRAME = 64 * 1024 * 1024;

/** Fields of one request (after its op and id) troupe-spawner takes: MAX_FIELDS in spawner.c. */
const MAX_FIELDS = 65536;

export class Spawner {
  private readonly child: ChildProcess;
  private readonly pending = new Map<string, SandboxProcessEvents>();
  private nextId = 1;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private gone: string | undefined;
  private corked = false;

  constructor(path: string) {
    // Its own process group: a Ctrl-C on the terminal is troupe's to handle
    // (a graceful cancel), not a signal to every sandbox at once.
    this.child = spawn(path, [], { stdio: ["pipe", "pipe", "inherit"], detached: true });
    // EPIPE once it has died: its "close" below reports that.
    this.child.stdin!.on("error", () => undefined);
    this.child.stdout!.on("data", (data: Buffer) => this.receive(data));
    this.child.on("error", (error) => this.lost(`cannot start troupe-spawner: ${error.message}`));
    this.child.on("close", (code, signal) => this.lost(`troupe-spawner ended unexpectedly (${signal ?? `exit code ${code}`})`));
    this.idle();
  }

  readonly start: StartSandboxProcess = ({ argv, directives, logPath, live, keep, supervised, secrets, released }, given) => {
    const id = String(this.nextId++);
    // With secrets to mask, the helper relays the output and troupe writes the log (masked): "relay" mode.
    const masked = keep === undefined && hasMaskable(secrets);
    const events = masked ? maskedEvents(new MaskedLog(logPath, secrets, live ? given.output : undefined), given) : given;
    if (this.gone !== undefined) {
      const reason = this.gone;
      queueMicrotask(() => events.exit(undefined, reason));
    } else {
      if (this.pending.size === 0) this.busy();
      this.pending.set(id, events);
      const head = keep !== undefined ? ["keep", logPath, keep] : [masked ? "relay" : live ? "pipe" : "file", logPath];
      const fields = directives ? [...head, ...directives] : [...head, ...argv];
      // Fields travel NUL-separated: one with a NUL in it would become several (a directive, a flag).
      const refused = fields.some((field) => field.includes("\0"))
        ? "a NUL character in the task's command, environment or paths"
        : fields.length > MAX_FIELDS
          ? `the task's request has ${fields.length} fields, more than the ${MAX_FIELDS} troupe-spawner takes`
          : !this.send(directives ? "sandbox" : supervised ? "spawn-supervised" : "spawn", id, fields)
            ? "the task's command, environment and files together are over 64 MiB"
            : undefined;
      if (refused !== undefined) {
        this.finish(id);
        queueMicrotask(() => events.exit(undefined, refused));
      } else if (released) {
        // In the same write as the start (send corks a turn's requests): the helper writes "go" to the barrier as
        // it starts the process, with no round trip through this event loop between the two.
        this.send("release", id, []);
      }
    }
    const process: SandboxProcess = {
      release: () => void this.send("release", id, []),
      signal: (name, pid) => void this.send("signal", id, [String(signalNumber(name)), String(pid ?? 0)]),
    };
    // troupe's own sandbox (a kept one's through its keeper) and a supervised bwrap keep their barrier open after "go".
    if (directives || supervised) process.restart = (graceMs) => void this.send("restart", id, [String(Math.max(0, Math.round(graceMs)))]);
    return process;
  };

  /** Whether the helper is gone (closed, or ended): it starts nothing more. */
  get ended(): boolean {
    return this.gone !== undefined;
  }

  /** Ends the helper; sandboxes still running die with it (bwrap --die-with-parent), but for kept ones. */
  close(): void {
    this.gone ??= "the host runtime was closed";
    this.child.stdin!.end();
  }

  /** False when the request is larger than the helper takes (MAX_FRAME in spawner.c). */
  private send(op: string, id: string, fields: string[]): boolean {
    if (this.gone !== undefined || !this.pending.has(id)) return true;
    // One string, encoded once into the frame (a Buffer per field cost a task's start about 40 of them).
    const text = `${op}\0${id}\0${fields.length > 0 ? fields.join("\0") + "\0" : ""}`;
    const length = Buffer.byteLength(text);
    if (length > MAX_FRAME) return false;
    const frame = Buffer.allocUnsafe(4 + length);
    frame.writeUInt32LE(length, 0);
    frame.write(text, 4);
    const stdin = this.child.stdin!;
    // The requests of one turn of the event loop (many starts and releases in a burst) go out in one write.
    if (!this.corked) {
      this.corked = true;
      stdin.cork();
      process.nextTick(() => {
        this.corked = false;
        stdin.uncork();
      });
    }
    stdin.write(frame);
    return true;
  }

  private receive(data: Buffer): void {
    this.chunks.push(data);
    this.buffered += data.length;
    if (this.buffered < 4) return;
    let buffer = this.chunks.length === 1 ? data : Buffer.concat(this.chunks);
    let at = 0;
    while (buffer.length - at >= 4) {
      const length = buffer.readUInt32LE(at);
      if (buffer.length - at - 4 < length) break;
      this.event(buffer.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    buffer = buffer.subarray(at);
    this.chunks = buffer.length > 0 ? [buffer] : [];
    this.buffered = buffer.length;
  }

  private event(frame: Buffer): void {
    const opEnd = frame.indexOf(0);
    const idEnd = frame.indexOf(0, opEnd + 1);
    if (opEnd < 0 || idEnd < 0) return;
    const op = frame.toString("latin1", 0, opEnd);
    const id = frame.toString("latin1", opEnd + 1, idEnd);
    const rest = frame.subarray(idEnd + 1);
    const events = this.pending.get(id);
    if (!events) return;
    switch (op) {
      case "status":
        events.status(rest);
        break;
      case "output":
        events.output?.(rest);
        break;
      case "exited":
        this.finish(id);
        events.exit(Number(rest.toString("latin1")));
        break;
      case "failed":
        this.finish(id);
        events.exit(undefined, rest.toString("utf8"));
        break;
      // "started" carries the pid, which troupe does not need: the helper signals by id.
    }
  }

  private finish(id: string): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.idle();
  }

  /** The helper is gone: every process it had is reported ended, never left waiting. */
  private lost(reason: string): void {
    this.gone ??= reason;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const events of pending) events.exit(undefined, this.gone);
  }

  // While no task runs, the helper must not keep troupe's event loop alive.
  private busy(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref(): void }).ref();
  }

  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref(): void }).unref();
  }
}
