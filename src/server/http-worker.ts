/**
 * The server's HTTP thread: Fastify and every read of the store (its own
 * SQLite connection), apart from the thread that runs the workflows, so that
 * a query is answered while the engines are busy. Submissions, restarts and
 * cancels go to the run manager in the main thread (http-thread.ts); the
 * records of running runs are kept here from the updates the main thread
 * commits (RunStore.applyUpdates), so querying one reads no database.
 */
import { parentPort, workerData } from "node:worker_threads";
import { RunStore, type RunRecord, type StoreUpdate } from "../store/index.js";
import { configureLog, type LogDestination } from "../util/log.js";
import { buildApp } from "./app.js";
import { RunChanges } from "./run-changes.js";
import type { RunControl } from "./run-manager.js";

export interface HttpThreadOptions {
  home: string;
  host: string;
  port: number;
  /** AppOptions.privateWorkflows. */
  privateWorkflows?: boolean;
  /** The server's log, which this thread appends to as well (the main thread rotates it). */
  log?: Pick<LogDestination, "file" | "level">;
}

/** Main thread -> HTTP thread. */
export type ToHttp =
  | { kind: "reply"; call: number; result?: unknown; error?: string }
  | { kind: "live"; id: string; created?: RunRecord }
  | { kind: "forget"; id: string }
  | { kind: "updates"; json: string; runs: string[] }
  | { kind: "close" };

/** HTTP thread -> main thread. */
export type FromHttp =
  | { kind: "call"; call: number; method: "submit" | "restart" | "cancel" | "poolLoads"; args: unknown[] }
  | { kind: "listening"; address: string }
  | { kind: "failed"; error: string }
  | { kind: "closed" };

const port = parentPort!;
const send = (message: FromHttp) => port.postMessage(message);

async function main(options: HttpThreadOptions): Promise<void> {
  const logger = options.log ? configureLog({ ...options.log, thread: "http" }) : undefined;
  const store = RunStore.open(options.home);
  const pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();
  let nextCall = 1;
  const call =
    (method: "submit" | "restart" | "cancel" | "poolLoads") =>
    (...args: unknown[]): Promise<never> =>
      new Promise((resolve, reject) => {
        const id = nextCall++;
        pending.set(id, { resolve, reject });
        send({ kind: "call", call: id, method, args });
      });
  const manager: RunControl = { submit: call("submit"), restart: call("restart"), cancel: call("cancel"), poolLoads: call("poolLoads") };
  const changes = new RunChanges();
  const app = await buildApp({ store, manager, privateWorkflows: options.privateWorkflows, changes, logger, ui: {} });

  port.on("message", (message: ToHttp) => {
    switch (message.kind) {
      case "reply": {
        const waiting = pending.get(message.call);
        pending.delete(message.call);
        if (message.error !== undefined) waiting?.reject(new Error(message.error));
        else waiting?.resolve(message.result as never);
        break;
      }
      case "live":
        store.keepLive(message.id, message.created);
        break;
      case "forget":
        store.forget(message.id);
        changes.notify(message.id);
        break;
      case "updates":
        store.applyUpdates(JSON.parse(message.json) as StoreUpdate[]);
        for (const run of message.runs) changes.notify(run);
        break;
      case "close": {
        // Followers of a log stream are cut off rather than waited for.
        const closed = Promise.race([app.close(), new Promise((resolve) => setTimeout(resolve, 1_000))]);
        void closed.finally(() => {
          store.close();
          send({ kind: "closed" });
          port.close();
        });
        break;
      }
    }
  });
  const address = await app.listen({ host: options.host, port: options.port });
  send({ kind: "listening", address });
}

main(workerData as HttpThreadOptions).catch((error: Error) => send({ kind: "failed", error: error.message }));
