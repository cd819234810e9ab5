/**
 * Renders a workflow file as a Jinja template in a worker thread, bounded in
 * time and memory. The worker is kept between renders (a server renders many)
 * and replaced when a render runs over its time and has to be terminated.
 */
import { Worker } from "node:worker_threads";

export interface RenderLimits {
  /** Wall-clock bound for one render. OSMO's is 0.5 s; troupe's default is 1 s. */
  timeoutMs: number;
  /** Bound on the rendered text (OSMO: 100 MB). */
  maxOutputChars: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = { timeoutMs: 1_000, maxOutputChars: 100 * 1024 * 1024 };

export type RenderResult =
  | { ok: true; output: string }
  | { ok: false; kind: "syntax" | "undefined" | "runtime" | "too_large" | "timeout"; message: string; variable?: string };

interface Pending {
  resolve: (result: RenderResult) => void;
  timer: NodeJS.Timeout;
  /** The worker doing this render: only its own failure may fail the render. */
  worker: Worker;
}

const WORKER_URL = new URL("./render-worker.mjs", import.meta.url);

class RenderWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  render(template: string, variables: Record<string, unknown>, limits: RenderLimits): Promise<RenderResult> {
    const worker = this.ensureWorker(limits);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle(id, { ok: false, kind: "timeout", message: `rendering took longer than ${limits.timeoutMs} ms` });
        this.restart();
      }, limits.timeoutMs);
      this.pending.set(id, { resolve, timer, worker });
      worker.ref();
      worker.postMessage({ id, template, variables, maxOutputChars: limits.maxOutputChars });
    });
  }

  private ensureWorker(limits: RenderLimits): Worker {
    if (this.worker) return this.worker;
    // Memory bound: the rendered text and the interpreter's values live here;
    // a template that outgrows it kills only the worker.
    const heapMb = Math.max(256, Math.ceil((limits.maxOutputChars * 4) / (1024 * 1024)));
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    worker.on("message", (message: { id: number } & RenderResult) => this.settle(message.id, message));
    worker.on("error", (error) => this.failAll(worker, error));
    worker.on("exit", () => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(worker, new Error("template worker exited"));
    });
    this.worker = worker;
    return worker;
  }

  private settle(id: number, result: RenderResult): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    if (![...this.pending.values()].some((p) => p.worker === pending.worker)) pending.worker.unref();
    const { ok } = result;
    pending.resolve(ok ? { ok, output: result.output } : stripId(result));
  }

  private failAll(worker: Worker, error: Error): void {
    const outOfMemory = /memory|ERR_WORKER_OUT_OF_MEMORY/i.test(`${error.message} ${(error as { code?: string }).code ?? ""}`);
    for (const [id, pending] of [...this.pending]) {
      if (pending.worker !== worker) continue;
      this.settle(
        id,
        outOfMemory
          ? { ok: false, kind: "too_large", message: "rendering ran out of memory" }
          : { ok: false, kind: "runtime", message: error.message },
      );
    }
  }

  private restart(): void {
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
  }
}

function stripId(result: RenderResult & { id?: number }): RenderResult {
  const copy = { ...result };
  delete copy.id;
  return copy;
}

const shared = new RenderWorker();

export function renderJinja(
  template: string,
  variables: Record<string, unknown>,
  limits: RenderLimits = DEFAULT_RENDER_LIMITS,
): Promise<RenderResult> {
  return shared.render(template, variables, limits);
}
