/**
 * Finding a container engine that answers: docker through its API
 * (DOCKER_HOST, or its usual socket), or podman through its CLI.
 */
import { existsSync } from "node:fs";
import { ApiBackend } from "./api-backend.js";
import type { ContainerBackend } from "./backend.js";
import { PodmanCliBackend } from "./cli-backend.js";
import { DockerApi, parseEndpoint } from "./docker-api.js";

export type EngineName = "podman" | "docker";

export class NoEngineError extends Error {}

/** The engine asked for, or the first that answers of docker and podman. */
export async function connectEngine(choice: EngineName | undefined): Promise<ContainerBackend> {
  const reasons: string[] = [];
  for (const name of choice ? [choice] : (["docker", "podman"] as const)) {
    try {
      return name === "docker" ? await connectDocker() : await connectPodman();
    } catch (error) {
      reasons.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new NoEngineError(`no container engine answered (${reasons.join("; ")})`);
}

async function connectDocker(): Promise<ContainerBackend> {
  const address = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  const endpoint = parseEndpoint(address);
  if (endpoint.socketPath && !existsSync(endpoint.socketPath)) throw new Error(`no socket at ${endpoint.socketPath}`);
  const api = new DockerApi(endpoint);
  try {
    await api.ping();
    const version = await api.version();
    const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name));
    return new ApiBackend("docker", api, address, version.Version, podman);
  } catch (error) {
    api.close();
    throw error;
  }
}

async function connectPodman(): Promise<ContainerBackend> {
  return PodmanCliBackend.connect();
}
