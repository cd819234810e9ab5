/**
 * Finding a container engine that answers: docker (DOCKER_HOST, or its
 * usual socket) or podman (CONTAINER_HOST, its usual sockets, or a service
 * troupe starts for itself with `podman system service`). Both are then
 * spoken to through the same Docker-compatible API.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { onPath } from "../../util/executables.js";
import { isProcessTokenAlive, processToken } from "../../util/process-identity.js";
import { DockerApi, parseEndpoint } from "./docker-api.js";

export type EngineName = "podman" | "docker";

export interface ContainerEngine {
  name: EngineName;
  /** Where it answered, for the first line of a run. */
  address: string;
  version: string;
  api: DockerApi;
  /** Stops what troupe started for this engine (a podman service). */
  close(): Promise<void>;
}

export class NoEngineError extends Error {}

/** The first engine that answers: the one asked for, or docker then podman. */
export async function connectEngine(choice: EngineName | undefined, stateDir: string): Promise<ContainerEngine> {
  const reasons: string[] = [];
  for (const name of choice ? [choice] : (["docker", "podman"] as const)) {
    try {
      return name === "docker" ? await connectDocker() : await connectPodman(stateDir);
    } catch (error) {
      reasons.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new NoEngineError(`no container engine answered (${reasons.join("; ")})`);
}

async function answering(address: string, name: EngineName, close: () => Promise<void> = async () => {}): Promise<ContainerEngine> {
  const api = new DockerApi(parseEndpoint(address));
  try {
    await api.ping();
    const version = await api.version();
    return { name, address, version: version.Version, api, close: async () => (api.close(), await close()) };
  } catch (error) {
    api.close();
    throw error;
  }
}

async function connectDocker(): Promise<ContainerEngine> {
  const address = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  if (address.startsWith("unix://") && !existsSync(address.slice(7))) throw new Error(`no socket at ${address.slice(7)}`);
  return answering(address, "docker");
}

async function connectPodman(stateDir: string): Promise<ContainerEngine> {
  const candidates = [
    process.env.CONTAINER_HOST,
    process.getuid?.() === 0 ? "unix:///run/podman/podman.sock" : undefined,
    process.env.XDG_RUNTIME_DIR ? `unix://${process.env.XDG_RUNTIME_DIR}/podman/podman.sock` : undefined,
  ].filter((a): a is string => a !== undefined);
  for (const address of candidates) {
    if (address.startsWith("unix://") && !existsSync(address.slice(7))) continue;
    try {
      return await answering(address, "podman");
    } catch {
      // Not serving: try the next, then start our own.
    }
  }
  if (!onPath("podman")) throw new Error("podman is not installed");
  return startPodmanService(stateDir);
}

/**
 * podman has no daemon: troupe starts `podman system service` on a socket of
 * its own for as long as it runs, and records it (with troupe's process token)
 * so that the next start stops one that a killed troupe left.
 */
async function startPodmanService(stateDir: string): Promise<ContainerEngine> {
  const dir = join(stateDir, "engine");
  mkdirSync(dir, { recursive: true });
  sweepPodmanServices(dir);
  const socket = join(dir, `podman-${process.pid}.sock`);
  rmSync(socket, { force: true });
  const child = spawn("podman", ["system", "service", "--time=0", `unix://${socket}`], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.unref();
  (child.stderr as unknown as { unref(): void }).unref();
  const record = join(dir, `podman-${process.pid}.json`);
  writeFileSync(record, JSON.stringify({ owner: processToken(), pid: child.pid, socket }));
  const stop = async () => {
    await stopService(child);
    rmSync(record, { force: true });
    rmSync(socket, { force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`podman system service exited (${child.exitCode}): ${stderr.trim().split("\n").pop() ?? ""}`);
    }
    if (existsSync(socket)) {
      try {
        return await answering(`unix://${socket}`, "podman", stop);
      } catch {
        // Not listening yet.
      }
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("podman system service did not answer within 15 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => (clearTimeout(timer), resolve()));
    child.kill("SIGTERM");
  });
}

/** Services whose troupe died: stopped (by their recorded PID, only while the record's owner is gone). */
function sweepPodmanServices(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".json")) continue;
    const path = join(dir, name);
    try {
      const { owner, pid, socket } = JSON.parse(readFileSync(path, "utf8")) as { owner: string; pid: number; socket: string };
      if (isProcessTokenAlive(owner)) continue;
      try {
        // Only if that PID is still a podman service (a PID may have been reused).
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`unix://${socket}`)) process.kill(pid, "SIGTERM");
      } catch {
        // Gone already.
      }
      rmSync(socket, { force: true });
      rmSync(path, { force: true });
    } catch {
      rmSync(path, { force: true });
    }
  }
}

