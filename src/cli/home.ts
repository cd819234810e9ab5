/** Where troupe keeps its state: $TROUPE_HOME, else ~/.troupe. */
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { RunStore } from "../store/index.js";

export function troupeHome(): string {
  const fromEnv = process.env.TROUPE_HOME;
  return fromEnv ? resolve(fromEnv) : join(homedir(), ".troupe");
}

export function openStore(): RunStore {
  return RunStore.open(troupeHome());
}
