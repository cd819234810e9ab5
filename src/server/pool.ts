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
  /** Host paths (and what is under them) tasks' `volumeMounts` may show them; refused otherwise. */
  allowedMounts: readonly string[];
  /** Mounts (`SRC[:DEST]`) every task of the pool gets. */
  defaultMounts: readonly string[];
  /** Where its runs run: the pool's runtime, chosen once for all of them. */
  backend: PoolBackend;
}
