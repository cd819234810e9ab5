/**
 * How many tasks a run may have at once when neither the run nor its pool says (deciding only).
 */
import type { PoolCapabilities } from "../port/index.js";

/**
 * The engine's own default: tasks on this machine (or a pool it admits to) share its cores, memory and
 * processes, and a run of thousands started at once would have them fight for those.
 */
export const DEFAULT_MAX_PARALLEL = 64;

/** `given` (the run's or pool's own), else the runtime's default for its pools, else the engine's. */
export function maxParallelFor(capabilities: PoolCapabilities, given?: number): number {
  return given ?? capabilities.defaultMaxParallel ?? DEFAULT_MAX_PARALLEL;
}
