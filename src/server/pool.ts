/** A pool of the server: what its workflows may use and where they run. */
import type { Capacity } from "../engine/index.js";
import type { ExitActionRule } from "../plan/index.js";
import type { PoolBackend } from "../port/index.js";

export interface Pool {
  name: string;
  capacity: Capacity;
  maxRetries: number;
  maxParallel: number;
  /** Exit actions applied after each task's own. */
  exitActions: readonly ExitActionRule[];
  /** Tasks with `privileged: true` may run (as root); refused otherwise. */
  privilegedAllowed: boolean;
  /** Where its runs run: the pool's runtime, chosen once for all of them. */
  backend: PoolBackend;
}
