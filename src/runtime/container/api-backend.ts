/**
 * An engine through the Docker Engine API: docker's daemon, or podman's
 * `system service`. The container's output is followed into the log and,
 * once it has stopped, checked against the engine's whole log (a followed
 * stream can end before its last lines, as seen with podman).
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, statSync } from "node:fs";
import {
  INIT_WITHOUT_COMMAND,
  type ContainerBackend,
  type ContainerSpec,
  type OwnedResources,
  type StartedContainer,
  type StartTry,
} from "./backend.js";
import type { RegistryAuth } from "../../port/index.js";
import { apiMountConfig } from "./bind-mounts.js";
import { LogDemuxer, type DockerApi } from "./docker-api.js";
import { singleFileTar } from "./single-file-tar.js";
import { log, tolerated } from "../../util/log.js";
import { MaskedLog } from "../masked-log.js";

/** How long the log stream may lag behind the container's end before troupe stops waiting for it. */
const LOG_DRAIN_MS = 10_000;

/** Where the engine check binds troupe-init in an image already present. */
const CHECK_INIT = "/.troupe-check-init";

export class ApiBackend implements ContainerBackend {
  constructor(
    readonly engine: "podman" | "docker",
    private readonly api: DockerApi,
    private readonly address: string,
    private readonly version: string,
    /** podman's service speaks the API but keeps networks apart only when asked. */
    private readonly servedByPodman: boolean,
  ) {}

  /** The engine's own DNS (docker's, or aardvark-dns started by podman's service, not under a task's process). */
  readonly engineDns = true;

  get local(): boolean {
    return this.api.endpoint.socketPath !== undefined;
  }

  describe(): string {
    return `${this.engine} ${this.version} (API at ${this.address})`;
  }

  /**
   * The engine check's try (engine-check.ts): one container with no command
   * and no network running troupe-init, then removed; the engine's reason
   * when it fails. It runs in an image already present, troupe-init bound
   * in; only an engine with no image at all is given an image of troupe-init
   * alone (imported, no registry needed, removed after), since podman's
   * service keeps every imported upload as a file in /var/tmp.
   */
  async tryStart(_dir: string, init: string, timeoutMs: number): Promise<StartTry> {
    const name = `troupe-check-${process.pid}-${randomBytes(4).toString("hex")}`;
    let imported: string | undefined;
    const attempt = async (): Promise<StartTry> => {
      // Without the list, the check imports its own image, as on an engine with none.
      const present = await this.api.anyImage().catch(tolerated("the engine check could not list images", { engine: this.address }));
      if (present !== undefined) {
        const mounts = [{ Type: "bind", Source: init, Target: CHECK_INIT, ReadOnly: true }];
        await this.api.createContainer(name, {
          Image: present,
          Entrypoint: [CHECK_INIT],
          Cmd: [],
          HostConfig: { NetworkMode: "none", Mounts: mounts },
        });
      } else {
        imported = await this.api.importImage(singleFileTar("init", readFileSync(init), 0o755), "troupe-check");
        await this.api.createContainer(name, { Image: imported, Entrypoint: ["/init"], Cmd: [], HostConfig: { NetworkMode: "none" } });
      }
      await this.api.startContainer(name);
      const code = await this.api.waitContainer(name);
      const said = (await this.api.logs(name)).toString("utf8");
      if (said.includes(INIT_WITHOUT_COMMAND)) return { started: true, reason: "" };
      return { started: false, reason: `the container ended with ${code}: ${said.trim() || "it said nothing"}` };
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
      return await Promise.race([attempt(), late]);
    } catch (error) {
      return { started: false, reason: (error as Error).message };
    } finally {
      clearTimeout(timer);
      await this.api.removeContainer(name).catch(tolerated("could not remove the engine check's container", { container: name }, "warn"));
      if (imported !== undefined)
        await this.api.removeImage(imported).catch(tolerated("could not remove the engine check's image", { image: imported }, "warn"));
    }
  }

  hasImage(image: string): Promise<boolean> {
    return this.api.hasImage(image);
  }

  pull(image: string, signal?: AbortSignal, auth?: RegistryAuth): Promise<void> {
    return this.api.pull(image, signal, auth);
  }

  async createNetwork(name: string, subnet: string, gateway: string, labels: Record<string, string>): Promise<void> {
    await this.api.createNetwork(name, subnet, gateway, labels, this.servedByPodman ? { isolate: "true" } : {});
  }

  async removeNetwork(name: string): Promise<void> {
    // One already gone is no failure (DockerApi); one left is removed by a later sweep.
    await this.api.removeNetwork(name).catch(tolerated("could not remove the network", { network: name }, "warn"));
  }

  async removeIdleNetwork(name: string): Promise<boolean> {
    // The engine refuses to remove a network with active endpoints: the answer, not a failure.
    return this.api.removeNetwork(name).then(
      () => true,
      (error: unknown) => (tolerated("the network was not removed (in use?)", { network: name })(error), false),
    );
  }

  /** The engine keeps each container, its exit code and its log until troupe removes it: a restart re-attaches. */
  readonly keepsContainers = true;

  async reattach(name: string, logPath: string): Promise<StartedContainer | undefined> {
    try {
      await this.api.inspectContainer(name);
    } catch (error) {
      // No such container (any more): the caller settles the attempt from what it has.
      log.debug({ container: name, err: error }, "no container to re-attach to");
      return undefined;
    }
    const ended = (async (): Promise<{ code: number; error?: string }> => {
      let code: number;
      try {
        code = await this.api.waitContainer(name);
      } catch (error) {
        return { code: 128, error: `lost the container: ${(error as Error).message}` };
      }
      // The log file has what the earlier process wrote; the engine has the whole log.
      try {
        const whole = await this.api.logs(name);
        const have = existsSync(logPath) ? statSync(logPath).size : 0;
        if (whole.length > have) appendFileSync(logPath, whole.subarray(have));
      } catch (error) {
        appendFileSync(logPath, `troupe: could not complete this container's log: ${(error as Error).message}\n`);
      }
      await this.api.removeContainer(name).catch(tolerated("could not remove the ended container", { container: name }, "warn"));
      return { code };
    })();
    return {
      ended,
      kill: () => this.stopContainer(name, 0),
      stop: async (graceMs) => {
        await this.stopContainer(name, graceMs);
        await ended;
      },
    };
  }

  async stopContainer(name: string, graceMs: number): Promise<void> {
    // A container already gone is no failure (DockerApi); one the engine would not stop is waited for by its caller.
    const stopping = tolerated("the engine did not stop the container", { container: name });
    if (graceMs > 0) await this.api.stopContainer(name, Math.max(1, Math.ceil(graceMs / 1000))).catch(stopping);
    else await this.api.killContainer(name).catch(stopping);
  }

  start(spec: ContainerSpec, logPath: string, onOutput?: (chunk: Buffer) => void): StartedContainer {
    if (spec.gpuDevices?.length && this.servedByPodman) {
      // podman 4's compatible API takes no GPU request (it ignores DeviceRequests): a task must not run without its GPUs.
      const reason = "GPUs cannot be given through podman's Docker-compatible API; use podman's CLI (--engine podman)";
      return { ended: Promise.resolve({ code: 125, error: reason }), stop: async () => undefined, kill: async () => undefined };
    }
    const mounts = apiMountConfig(spec.mounts, this.servedByPodman);
    if (mounts.refusal !== undefined)
      return { ended: Promise.resolve({ code: 125, error: mounts.refusal }), stop: async () => undefined, kill: async () => undefined };
    const created = this.api.createContainer(spec.name, {
      Image: spec.image,
      Entrypoint: spec.entrypoint,
      Cmd: spec.command,
      Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
      // No WorkingDir: the command starts where its image says (its WORKDIR, else /), as OSMO's pods do.
      Hostname: spec.hostname,
      Labels: spec.labels,
      HostConfig: { ...hostConfigOf(spec), ...mounts },
      // The host's network has no endpoint of the container's own to configure.
      ...(spec.network.ip
        ? {
            NetworkingConfig: {
              EndpointsConfig: { [spec.network.name]: { IPAMConfig: { IPv4Address: spec.network.ip }, Aliases: spec.network.aliases } },
            },
          }
        : {}),
    });
    const started = created.then(async (id) => {
      try {
        await this.api.startContainer(id);
      } catch (error) {
        await this.api.removeContainer(id);
        throw error;
      }
      return id;
    });
    const ended = started.then(
      (id) => this.follow(id, logPath, spec.secrets ?? [], onOutput),
      (error: Error) => ({ code: 125, error: error.message }),
    );
    return {
      ended,
      // A container that never started has nothing to stop (`ended` reports why it did not start).
      kill: async () => {
        const id = await started.catch(() => undefined);
        if (id) await this.api.killContainer(id).catch(tolerated("the engine did not kill the container", { container: spec.name }));
      },
      stop: async (graceMs) => {
        const id = await started.catch(() => undefined);
        if (id)
          await this.api
            .stopContainer(id, Math.max(1, Math.ceil(graceMs / 1000)))
            .catch(tolerated("the engine did not stop the container", { container: spec.name }));
        await ended;
      },
    };
  }

  private async follow(
    id: string,
    logPath: string,
    secrets: readonly string[],
    onOutput?: (chunk: Buffer) => void,
  ): Promise<{ code: number; error?: string }> {
    // Appending, each secret of the task's credentials masked (a container restarted in place goes on in the same file).
    const taskLog = new MaskedLog(logPath, secrets, onOutput);
    let received = 0;
    const write = (chunk: Buffer) => {
      received += chunk.length;
      taskLog.write(chunk);
    };
    const streamed = (async () => {
      const stream = await this.api.followLogs(id);
      const demux = new LogDemuxer(write);
      for await (const data of stream) demux.push(data as Buffer);
    })().catch((error: Error) => taskLog.write(Buffer.from(`troupe: the log stream of this container broke: ${error.message}\n`)));
    let result: { code: number; error?: string };
    try {
      result = { code: await this.api.waitContainer(id) };
    } catch (error) {
      result = { code: 128, error: `lost the container: ${(error as Error).message}` };
    }
    await Promise.race([streamed, new Promise((resolve) => setTimeout(resolve, LOG_DRAIN_MS).unref())]);
    try {
      const whole = await this.api.logs(id);
      if (whole.length > received) write(whole.subarray(received));
    } catch (error) {
      taskLog.write(Buffer.from(`troupe: could not check this container's log for completeness: ${(error as Error).message}\n`));
    }
    await new Promise<void>((resolve) => taskLog.end(() => resolve()));
    await this.api.removeContainer(id).catch(tolerated("could not remove the ended container", { container: id }, "warn"));
    return result;
  }

  async owned(key: string, containersIf?: (network: { labels: Record<string, string> }) => boolean): Promise<OwnedResources> {
    const networks = (await this.api.listNetworks(key)).map((n) => ({ name: n.Name, labels: n.Labels ?? {} }));
    if (containersIf && !networks.some(containersIf)) return { containers: [], networks };
    const containers = await this.api.listContainers(key);
    return { containers: containers.map((c) => ({ id: c.Id, labels: c.Labels ?? {} })), networks };
  }

  async removeContainer(id: string): Promise<void> {
    await this.api.removeContainer(id).catch(tolerated("could not remove the container", { container: id }, "warn"));
  }

  async close(): Promise<void> {
    this.api.close();
  }
}

/** The engine's HostConfig for a container, but its mounts (apiMountConfig): network, hosts, limits, GPUs. */
export function hostConfigOf(spec: ContainerSpec): Record<string, unknown> {
  const hostConfig: Record<string, unknown> = {
    NetworkMode: spec.network.name,
    ExtraHosts: Object.entries(spec.extraHosts).map(([name, address]) => `${name}:${address}`),
  };
  if (spec.dns) Object.assign(hostConfig, { Dns: spec.dns.servers, DnsSearch: spec.dns.search });
  if (spec.privileged) hostConfig.Privileged = true;
  if (spec.shmBytes) hostConfig.ShmSize = spec.shmBytes;
  if (spec.cpus) hostConfig.NanoCpus = Math.round(spec.cpus * 1e9);
  if (spec.memoryBytes) Object.assign(hostConfig, { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes });
  // Those GPUs, by index, as `docker run --gpus '"device=0,2"'` asks for them.
  if (spec.gpuDevices?.length)
    hostConfig.DeviceRequests = [{ Driver: "nvidia", DeviceIDs: spec.gpuDevices.map(String), Capabilities: [["gpu"]] }];
  return hostConfig;
}
