/** Where troupe keeps its state: $TROUPE_HOME, else ~/.troupe. */
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { RunStore, type RunStoreOptions } from "../store/index.js";
import { isRunOwnerAlive } from "../util/process-identity.js";

export function troupeHome(): string {
  const fromEnv = process.env.TROUPE_HOME;
  return fromEnv ? resolve(fromEnv) : join(homedir(), ".troupe");
}

/**
 * The store, with runs whose troupe process died settled as FAILED_SERVER_ERROR
 * first (but for a server's runs with kept tasks: the next server resumes them).
 */
export function openStore(options?: RunStoreOptions): { store: RunStore; settled: string[] } {
  const store = RunStore.open(troupeHome(), options);
  return { store, settled: store.settleOrphanedRuns(isRunOwnerAlive) };
}
