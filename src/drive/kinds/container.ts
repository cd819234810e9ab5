/**
 * The container runtime's entry: podman or docker. Whether the engine can
 * start containers here is checked once (runtime/container/engine-check.ts)
 * and its connection kept for every run of the pool.
 */
import { z } from "zod";
import { TroupeError, UsageError } from "../../errors/index.js";
import { checkEngine, connectEngine, ContainerRuntime, LocalPool, type ContainerBackend } from "../../runtime/index.js";
import { parseSize } from "../../spec/index.js";
import { defineRuntimeKind } from "../kind.js";

const ContainerOptions = z.object({
  engine: z.enum(["podman", "docker"]).optional(),
  pull: z.enum(["missing", "always", "never"]).optional(),
  shm_size: z
    .string()
    .refine((size) => parseSize(size).ok, "a size such as 8Gi")
    .optional(),
});

export const containerKind = defineRuntimeKind({
  name: "container",
  summary: "containers of podman or docker",
  options: ContainerOptions,
  impliedBy: ["engine", "pull", "shm_size"],
  automatic: true,
  async check(options, { home }) {
    let backend: ContainerBackend;
    try {
      backend = await connectEngine(options.engine);
    } catch (error) {
      const message = (error as Error).message;
      return { ok: false, error: new UsageError(`--runtime container: ${message}`), why: message };
    }
    const refusal = await checkEngine(backend, home);
    if (!refusal) return { ok: true, ready: backend };
    const engineName = backend.describe();
    void backend.close().catch(() => undefined); // it was only asked whether it can
    return {
      ok: false,
      error: new TroupeError(
        "E_ENGINE_CANNOT_START",
        `the container runtime was asked for, but ${engineName} cannot start containers here: ${refusal.reason}`,
        "usage",
        `to fix it, ${refusal.hint}; or run with --runtime host`,
      ),
      why: `${engineName} cannot start containers here (${refusal.reason})`,
      remedy: `to use containers, ${refusal.hint}`,
    };
  },
  create(options, backend, { home, images, longLived }) {
    const make = () => {
      // A long-lived pool's runs share the engine's connection: a run's end leaves it open.
      const shm = options.shm_size === undefined ? undefined : parseSize(options.shm_size);
      const shmBytes = shm?.ok ? shm.value : undefined;
      const runtime = new ContainerRuntime({ backend, pull: options.pull ?? "missing", sharedBackend: longLived, home, shmBytes });
      runtime.noteImages(images);
      return runtime;
    };
    return new LocalPool("container", make);
  },
  release(backend) {
    void backend.close().catch(() => undefined);
  },
});
