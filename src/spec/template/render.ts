/**
 * Renders a workflow file as a Jinja template in a pool of worker threads,
 * each render bounded in time (from when its worker starts it) and memory.
 * Workers are kept between renders (a server renders many) and replaced when
 * a render runs over its time and has to be terminated.
 */
import { availableParallelism } from "node:os";
import { WorkerPool } from "../../util/worker-pool.js";

export interface RenderLimits {
  /** Wall-clock bound for one render. OSMO's is 0.5 s; troupe's default is 1 s. */
  timeoutMs: number;
  /** Bound on the rendered text (OSMO: 100 MB). */
  maxOutputChars: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = { timeoutMs: 1_000, maxOutputChars: 100 * 1024 * 1024 };

export type RenderResult =
  | {
      ok: true;
      output: string;
      /** The variable names the template mentions (when asked for). */
      names?: string[];
    }
  | {
      ok: false;
      kind: "syntax" | "undefined" | "undefined_attribute" | "unsafe" | "runtime" | "too_large" | "too_deep" | "timeout";
      message: string;
      /** The undefined variable; for an undefined attribute, the value it was read from (`cfg`, `cfg.sub`). */
      variable?: string;
      /** The attribute that is undefined or refused. */
      attribute?: string;
      /** The interpreter failed inside itself (a TypeError): its message says nothing to the user. */
      internal?: boolean;
    };

const WORKER_URL = new URL("./render-worker.mjs", import.meta.url);

/** Renders at once: one user's slow template holds one worker, not everyone's renders. */
const POOL_SIZE = Math.min(4, Math.max(2, availableParallelism()));

interface RenderJob {
  template: string;
  variables: Record<string, unknown>;
  maxOutputChars: number;
  wantNames: boolean;
}

/** One pool per worker memory bound (it is set when a worker starts). */
const pools = new Map<number, WorkerPool<RenderJob, RenderResult>>();

function poolFor(limits: RenderLimits): WorkerPool<RenderJob, RenderResult> {
  // Memory bound: the rendered text and the interpreter's values live in the
  // worker; a template that outgrows it kills only that worker.
  const heapMb = Math.max(256, Math.ceil((limits.maxOutputChars * 4) / (1024 * 1024)));
  let pool = pools.get(heapMb);
  if (!pool) {
    pool = new WorkerPool({ file: WORKER_URL, size: POOL_SIZE, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    pools.set(heapMb, pool);
  }
  return pool;
}

export async function renderJinja(
  template: string,
  variables: Record<string, unknown>,
  limits: RenderLimits = DEFAULT_RENDER_LIMITS,
  wantNames = false,
): Promise<RenderResult> {
  const outcome = await poolFor(limits).run(
    { template, variables, maxOutputChars: limits.maxOutputChars, wantNames },
    { timeoutMs: limits.timeoutMs },
  );
  if (outcome.kind === "done") return outcome.result;
  if (outcome.kind === "timeout") return { ok: false, kind: "timeout", message: `rendering took longer than ${limits.timeoutMs} ms` };
  const error = outcome.error;
  return /memory|ERR_WORKER_OUT_OF_MEMORY/i.test(`${error.message} ${(error as { code?: string }).code ?? ""}`)
    ? { ok: false, kind: "too_large", message: "rendering ran out of memory" }
    : { ok: false, kind: "runtime", message: error.message };
}
