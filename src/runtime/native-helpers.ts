/**
 * troupe's small C helpers, built by `npm run build` into native/build/
 * (scripts/build-native.mjs): troupe-spawner (host runtime), troupe-init
 * (container runtime) and troupe-slurm-helper (a Slurm member's helper).
 */
import { accessSync, constants } from "node:fs";
import { fileURLToPath } from "node:url";

/** Where the built helper is, or undefined when it was not built. The same path from src/ (tests) and dist/ (the CLI). */
export function builtHelper(name: "troupe-spawner" | "troupe-init" | "troupe-slurm-helper"): string | undefined {
  const path = fileURLToPath(new URL(`../../native/build/${name}`, import.meta.url));
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    // Not built (no C compiler when troupe was installed): callers do without it, and say so where it matters.
    return undefined;
  }
}
