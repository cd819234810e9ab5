/**
 * The runtime port's conformance suite (port.conformance.ts) against the
 * container runtime through LocalPool: podman through its CLI, and the Docker
 * Engine API (served by a `podman system service` this file starts, since no
 * docker engine runs on these machines), with the locally built test image.
 */
import { execFileSync } from "node:child_process";
import { describe } from "vitest";
import type { PoolBackend } from "../../src/port/index.js";
import { containersOfRun, IS_ROOT, networksOfRun, PodmanService } from "../run/helpers.js";
import { BACKENDS, closeEngine } from "./backends.js";
import { describeConformance } from "./port.conformance.js";

function podmanWorks(): boolean {
  try {
    execFileSync("podman", ["image", "exists", "alpine:3.18"], { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

const leftovers = (runId: string) => [...containersOfRun(runId), ...networksOfRun(runId)];

describe.runIf(IS_ROOT && podmanWorks())("container runtime (as root, podman)", () => {
  let cli: PoolBackend | undefined;
  describeConformance({
    name: "containers, podman's CLI",
    backend: "podman-cli",
    make: async () => (cli = await BACKENDS["podman-cli"]()),
    dispose: () => closeEngine(cli),
    image: "alpine:3.18",
    missingBinary: "exit-127",
    leftovers,
  });

  let service: PodmanService | undefined;
  let api: PoolBackend | undefined;
  describeConformance({
    name: "containers, the Docker API (podman's service)",
    backend: "docker-api",
    make: async () => {
      service = await PodmanService.start();
      // Read by the engine's connection here and by the dead-session cases' child process.
      process.env.DOCKER_HOST = service.url;
      return (api = await BACKENDS["docker-api"]());
    },
    dispose: async () => {
      await closeEngine(api);
      await service?.stop();
    },
    image: "alpine:3.18",
    missingBinary: "exit-127",
    leftovers,
  });
});
