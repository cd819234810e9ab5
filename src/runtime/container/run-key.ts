import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A run's key: random, made when the run first opens and kept in its data
 * directory, so that a server re-attaching the run later names its containers
 * the same, while two runs with the same id (two homes: a local `troupe run`
 * and a server) never name theirs alike. A resumed run without one was
 * started by a troupe that had no keys: its names have none ("").
 */
export function runKey(dataDir: string, resumed: boolean): string {
  const file = join(dataDir, "container-key");
  try {
    const key = readFileSync(file, "utf8").trim();
    if (/^[0-9a-f]{8}$/.test(key)) return key;
  } catch {
    // A new run.
  }
  if (resumed) return "";
  const key = randomBytes(4).toString("hex");
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, key);
  return key;
}
