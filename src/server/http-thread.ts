/**
 * The main thread's side of the server's HTTP thread (http-worker.ts): starts
 * it, answers its calls with the run manager, and passes it the updates the
 * store commits and the runs that start and end, for its live records.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { StoreUpdate } from "../store/index.js";
import type { RunRecord } from "../model/index.js";
import { log } from "../util/log.js";
import type { FromHttp, HttpThreadOptions, ToHttp } from "./http-worker.js";
import type { RunManager, RunObserver } from "./run-manager.js";

const UPDATES_MS = 20;

export interface HttpThread {
  readonly address: string;
  /** Stops listening (log followers are cut off after a second); resolves once the thread has ended. */
  close(): Promise<void>;
}

/**
 * The link to the HTTP thread, made before the run manager (which reports
 * runs starting and ending to it) and the store (which passes it its commits).
 */
export class HttpThreadLink implements RunObserver {
  private worker: Worker | undefined;
  private readonly backlog: ToHttp[] = [];
  private openGate!: () => void;
  /** Calls wait until the manager is ready for them (the server has resumed what it had to). */
  private readonly gate = new Promise<void>((resolve) => (this.openGate = resolve));

  /** From now on the manager takes the HTTP thread's calls. */
  open(): void {
    this.openGate();
  }

  started(id: string, created?: RunRecord): void {
    this.post({ kind: "live", id, created });
  }

  ended(id: string): void {
    this.post({ kind: "forget", id });
  }

  /** Committed updates not passed on yet: sent together, at most UPDATES_MS after the first (a message per commit cost more than the commits). */
  private updates: StoreUpdate[] = [];
  /** The runs those commits wrote anything of (transitions too): their followers (stream-route.ts) read on. */
  private readonly changedRuns = new Set<string>();
  private updatesTimer: NodeJS.Timeout | undefined;

  /** For RunStoreOptions.onCommit. */
  readonly committed = (updates: StoreUpdate[], runs: string[]): void => {
    if (updates.length === 0 && runs.length === 0) return;
    for (const update of updates) this.updates.push(update);
    for (const run of runs) this.changedRuns.add(run);
    this.updatesTimer ??= setTimeout(() => this.sendUpdates(), UPDATES_MS);
  };

  private sendUpdates(): void {
    clearTimeout(this.updatesTimer);
    this.updatesTimer = undefined;
    if (this.updates.length === 0 && this.changedRuns.size === 0) return;
    const updates = this.updates;
    this.updates = [];
    const runs = [...this.changedRuns];
    this.changedRuns.clear();
    // As JSON text: for the burst of a big run's start (40,000 updates for 10,000 tasks) JSON.parse in the HTTP
    // thread takes half the time a structured clone takes to arrive there, and the main thread's side costs the same.
    this.send({ kind: "updates", json: JSON.stringify(updates), runs });
  }

  /** In order: the updates committed before a run starts or ends go first. */
  private post(message: ToHttp): void {
    this.sendUpdates();
    this.send(message);
  }

  private send(message: ToHttp): void {
    if (this.worker) this.worker.postMessage(message);
    else this.backlog.push(message);
  }

  /** Starts the thread; resolves once it listens. `onFailure`: the thread died (the server cannot go on without it). */
  async start(options: HttpThreadOptions, manager: RunManager, onFailure: (error: Error) => void): Promise<HttpThread> {
    const worker = new Worker(workerFile(), { workerData: options });
    this.worker = worker;
    for (const message of this.backlog.splice(0)) worker.postMessage(message);
    let closed: (() => void) | undefined;
    const address = await new Promise<string>((resolve, reject) => {
      worker.on("message", (message: FromHttp) => {
        switch (message.kind) {
          case "listening":
            resolve(message.address);
            break;
          case "failed":
            // It could not start (the port is taken, say): the caller reports why.
            closed = () => undefined;
            void worker.terminate();
            reject(new Error(message.error));
            break;
          case "closed":
            closed?.();
            break;
          case "call":
            void this.gate.then(() => answer(manager, message)).then((reply) => worker.postMessage(reply));
            break;
        }
      });
      worker.on("error", (error) => {
        reject(error);
        onFailure(error);
      });
      worker.on("exit", (code) => {
        if (!closed) onFailure(new Error(`the HTTP thread ended (exit code ${code})`));
      });
    });
    return {
      address,
      close: () =>
        new Promise<void>((resolve) => {
          closed = resolve;
          worker.postMessage({ kind: "close" } satisfies ToHttp);
        }),
    };
  }
}

async function answer(manager: RunManager, message: Extract<FromHttp, { kind: "call" }>): Promise<ToHttp> {
  try {
    const args = message.args as never[];
    const result =
      message.method === "submit"
        ? await manager.submit(args[0]!)
        : message.method === "restart"
          ? await manager.restart(args[0]!, args[1]!)
          : message.method === "poolLoads"
            ? manager.poolLoads()
            : manager.cancel(args[0]!, args[1]!, args[2]);
    return { kind: "reply", call: message.call, result };
  } catch (error) {
    // The HTTP thread answers with the message only: the stack of what failed here is kept in the log.
    log.error({ err: error, call: message.method }, "a call of the HTTP thread failed");
    return { kind: "reply", call: message.call, error: (error as Error).message };
  }
}

/** Next to this module (dist/server/), or, where this module was bundled into the CLI (dist/bundle/), in dist/server/. */
function workerFile(): URL {
  const here = new URL("./http-worker.js", import.meta.url);
  return existsSync(fileURLToPath(here)) ? here : new URL("../server/http-worker.js", import.meta.url);
}
