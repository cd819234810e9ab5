/**
 * Which troupe home a container, network or bridge belongs to. Several homes
 * (servers, a `troupe run` beside a server, tests) may share one machine and
 * one engine, and run ids repeat across homes: what a starting server sweeps
 * as left behind by a dead owner, or what a run removes as its own, must be
 * of its home. The identity is a short hash of the home's real path: the same
 * for a server that restarts on that home, different for any other.
 */
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { resolve } from "node:path";

export function homeIdentity(home: string): string {
  let path = resolve(home);
  try {
    path = realpathSync(path);
  } catch {
    // Not made yet: its path as given.
  }
  return createHash("sha256").update(path).digest("hex").slice(0, 12);
}
