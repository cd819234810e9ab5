/**
 * The container runtime: each task attempt runs in its image, through the
 * Docker-compatible API that docker and podman both serve. Each group gets a
 * network of its own (addresses chosen before any member starts, members
 * reachable by task name, independent tasks unreachable, egress through the
 * engine's NAT); outputs, inputs (read-only) and files are bind mounts at the
 * same paths as on the host; every member waits in troupe-init until the
 * group is released. Everything carries labels with the run and troupe's
 * process token, so that a later start removes what a killed troupe left.
 */
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isProcessTokenAlive, processToken } from "../../util/process-identity.js";
import { TaskStartError, type PreparedMember, type RunContext, type Runtime, type TaskLaunch } from "../types.js";
import { ContainerMember } from "./container-member.js";
import { EngineError } from "./docker-api.js";
import type { ContainerEngine } from "./engine.js";

export type PullPolicy = "missing" | "always" | "never";

export interface ContainerRuntimeOptions {
  engine: ContainerEngine;
  pull: PullPolicy;
}

/** The same path from src/ (tests) and dist/ (the CLI). */
const INIT_PATH = fileURLToPath(new URL("../../../native/build/troupe-init", import.meta.url));
const LABEL_RUN = "troupe.run";
const LABEL_OWNER = "troupe.owner";
/** Group networks are /24s of this range (podman's and docker's defaults live elsewhere). */
const SUBNET_BASE = [10, 214];
const PULL_TIMEOUT_MS = 300_000;

export function initPath(): string | undefined {
  try {
    accessSync(INIT_PATH, constants.X_OK);
    return INIT_PATH;
  } catch {
    return undefined;
  }
}

export class ContainerRuntime implements Runtime {
  private run: RunContext | undefined;
  private readonly owner = processToken();
  private readonly images = new Map<string, Promise<void>>();
  private readonly networks = new Map<string, string>(); // address -> network name
  private readonly members = new Set<PreparedMember>();
  private readonly containers = new Set<string>();
  private nextSubnet = 0;
  private nextNetwork = 0;
  private readonly init: string;

  constructor(private readonly options: ContainerRuntimeOptions) {
    const init = initPath();
    if (!init) throw new Error("troupe-init was not built (it needs a C compiler with static libc: `npm run build`)");
    this.init = init;
  }

  private get api() {
    return this.options.engine.api;
  }

  describe(): string {
    const { name, version, address } = this.options.engine;
    return `runtime: container, engine: ${name} ${version} (${address}), a network per group`;
  }

  notices(): string[] {
    return [];
  }

  async open(run: RunContext): Promise<void> {
    this.run = run;
    mkdirSync(join(run.dataDir, "sandboxes"), { recursive: true });
  }

  /** A network for the group, made now so that every member's address is known before any starts. */
  async addresses(taskNames: readonly string[]): Promise<Record<string, string>> {
    const run = this.requireRun();
    const name = `troupe-${run.runId}-${this.nextNetwork++}`;
    for (let attempt = 0; ; attempt++) {
      const n = this.nextSubnet++ % 256;
      const prefix = `${SUBNET_BASE[0]}.${SUBNET_BASE[1]}.${n}`;
      try {
        await this.api.createNetwork(name, `${prefix}.0/24`, `${prefix}.1`, { [LABEL_RUN]: run.runId, [LABEL_OWNER]: this.owner });
      } catch (error) {
        // Another network (of another run or program) holds this subnet: take the next one.
        if (attempt < 255 && /subnet|overlap|in use|already/i.test((error as Error).message)) continue;
        throw error;
      }
      if (taskNames.length > 253) throw new Error(`a group of ${taskNames.length} members does not fit one /24 network`);
      const out: Record<string, string> = {};
      taskNames.forEach((task, i) => {
        out[task] = `${prefix}.${i + 2}`;
        this.networks.set(out[task]!, name);
      });
      return out;
    }
  }

  releaseAddresses(addresses: readonly string[]): void {
    const names = new Set(addresses.map((a) => this.networks.get(a)).filter((n): n is string => n !== undefined));
    for (const address of addresses) this.networks.delete(address);
    for (const name of names) void this.api.removeNetwork(name).catch(() => undefined);
  }

  async prepare(launch: TaskLaunch): Promise<PreparedMember> {
    const run = this.requireRun();
    await this.ensureImage(launch.image);
    const controlDir = join(run.dataDir, "sandboxes", `${launch.taskName}.${launch.retryId}`);
    mkdirSync(controlDir, { recursive: true });
    mkdirSync(launch.outputDir, { recursive: true });
    mkdirSync(join(launch.logPath, ".."), { recursive: true });
    const binds = [`${this.init}:/.troupe/init:ro`, `${controlDir}:/.troupe/ctl:ro`, `${launch.outputDir}:${launch.outputDir}:rw`];
    for (const input of launch.inputDirs) binds.push(`${input}:${input}:ro`);
    launch.files.forEach((file, i) => {
      const staged = join(controlDir, `file.${i}`);
      writeFileSync(staged, file.contents);
      binds.push(`${staged}:${file.path}`);
    });
    const network = this.networks.get(launch.address);
    const resources = launch.resources;
    const hostConfig: Record<string, unknown> = {
      Binds: binds,
      NetworkMode: network ?? "bridge",
      ExtraHosts: Object.entries(launch.hosts).map(([name, address]) => `${name}:${address}`),
    };
    if (resources?.cpu) hostConfig.NanoCpus = Math.round(resources.cpu * 1e9);
    if (resources?.memoryBytes) {
      hostConfig.Memory = resources.memoryBytes;
      hostConfig.MemorySwap = resources.memoryBytes; // no swap: over the limit is an OOM kill, as on a cluster
    }
    if (resources?.gpu) hostConfig.DeviceRequests = [{ Driver: "nvidia", Count: resources.gpu, Capabilities: [["gpu"]] }];
    let id: string;
    try {
      id = await this.api.createContainer(containerName(run.runId, launch), {
        Image: launch.image,
        Entrypoint: ["/.troupe/init"],
        Cmd: launch.argv,
        Env: Object.entries(launch.env).map(([key, value]) => `${key}=${value}`),
        WorkingDir: launch.outputDir,
        Hostname: launch.taskName,
        Labels: { [LABEL_RUN]: run.runId, [LABEL_OWNER]: this.owner, "troupe.task": launch.key },
        HostConfig: hostConfig,
        NetworkingConfig: network
          ? { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: launch.address }, Aliases: [launch.taskName] } } }
          : undefined,
      });
    } catch (error) {
      throw new TaskStartError(`cannot create its container: ${(error as Error).message}`, "FAILED_START_ERROR");
    }
    this.containers.add(id);
    try {
      await this.api.startContainer(id);
    } catch (error) {
      await this.api.removeContainer(id).catch(() => undefined);
      this.containers.delete(id);
      throw new TaskStartError(`cannot start its container: ${(error as Error).message}`, "FAILED_START_ERROR");
    }
    const member = new ContainerMember(launch, this.api, id, controlDir, run);
    this.members.add(member);
    void member.exited.then(() => {
      this.members.delete(member);
      this.containers.delete(id);
    });
    return member;
  }

  /** Once per image and run, as the pull policy says; failures are the task's FAILED_IMAGE_PULL. */
  private ensureImage(image: string): Promise<void> {
    let ready = this.images.get(image);
    if (!ready) {
      ready = this.fetchImage(image);
      this.images.set(image, ready);
    }
    return ready;
  }

  private async fetchImage(image: string): Promise<void> {
    const policy = this.options.pull;
    try {
      if (policy !== "always" && (await this.api.hasImage(image))) return;
      if (policy === "never") throw new EngineError(`the image ${image} is not present locally and --pull is never`);
      await withTimeout(this.api.pull(image), PULL_TIMEOUT_MS, `pulling ${image} took longer than ${PULL_TIMEOUT_MS / 1000} s`);
    } catch (error) {
      throw new TaskStartError(`cannot pull the image ${image}: ${(error as Error).message}`, "FAILED_IMAGE_PULL");
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.members].map((m) => m.stop(0)));
    await Promise.all([...this.containers].map((id) => this.api.removeContainer(id).catch(() => undefined)));
    const run = this.run;
    if (run) {
      const left = await this.api.listNetworks(`${LABEL_RUN}=${run.runId}`).catch(() => []);
      await Promise.all(left.map((n) => this.api.removeNetwork(n.Id).catch(() => undefined)));
      rmSync(join(run.dataDir, "sandboxes"), { recursive: true, force: true });
    }
    await this.options.engine.close();
  }

  /** Containers and networks of troupe processes that are gone. */
  async sweep(): Promise<string[]> {
    const removed: string[] = [];
    const stale = (labels: Record<string, string> | null) => {
      const owner = labels?.[LABEL_OWNER];
      return owner !== undefined && owner !== this.owner && !isProcessTokenAlive(owner);
    };
    for (const container of await this.api.listContainers(LABEL_OWNER)) {
      if (!stale(container.Labels)) continue;
      await this.api.removeContainer(container.Id);
      removed.push(`container ${container.Id.slice(0, 12)} (run ${container.Labels[LABEL_RUN]})`);
    }
    for (const network of await this.api.listNetworks(LABEL_OWNER)) {
      if (!stale(network.Labels)) continue;
      await this.api.removeNetwork(network.Id);
      removed.push(`network ${network.Name}`);
    }
    return removed;
  }

  private requireRun(): RunContext {
    if (!this.run) throw new Error("the container runtime was not opened");
    return this.run;
  }
}

function containerName(runId: string, launch: TaskLaunch): string {
  return `troupe-${runId}-${launch.taskName}-${launch.retryId}`.replace(/[^a-zA-Z0-9_.-]/g, "-");
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new EngineError(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
