/**
 * A small client of the Docker Engine API (v1.41), which docker serves and
 * podman serves too (`podman system service`): the calls the container
 * runtime needs, over a unix socket or TCP, with keep-alive connections.
 * Errors carry the engine's own message.
 */
import { Agent, request, type IncomingMessage } from "node:http";
import type { RegistryAuth } from "../../port/index.js";
import { jsonLines } from "../../util/json-lines.js";
import { registryAuthHeader } from "./registry-login.js";

export const API_VERSION = "v1.41";

export class EngineError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

export interface Endpoint {
  /** A unix socket path, or undefined for TCP. */
  socketPath?: string;
  host?: string;
  port?: number;
}

/** DOCKER_HOST-style address: unix:///path, tcp://host:port, or a bare socket path. */
export function parseEndpoint(address: string): Endpoint {
  if (address.startsWith("unix://")) return { socketPath: address.slice("unix://".length) };
  if (address.startsWith("/")) return { socketPath: address };
  const match = /^(?:tcp|http):\/\/([^:/]+)(?::(\d+))?\/?$/.exec(address);
  if (!match) throw new EngineError(`cannot read the engine address ${address} (expected unix:///path or tcp://host:port)`);
  return { host: match[1], port: Number(match[2] ?? 2375) };
}

export interface ContainerCreate {
  Image: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  Hostname?: string;
  Labels?: Record<string, string>;
  HostConfig?: Record<string, unknown>;
  NetworkingConfig?: Record<string, unknown>;
}

export interface ContainerState {
  Status: string;
  Running: boolean;
  OOMKilled: boolean;
  ExitCode: number;
  Error?: string;
  Pid?: number;
}

export class DockerApi {
  // No cap on sockets: every running container holds two for its whole life (its log stream and its wait), so a cap
  // of N would hold every other request (create, start, stop: a group's barrier, a cancel) once N/2 containers run.
  private readonly agent = new Agent({ keepAlive: true });

  constructor(readonly endpoint: Endpoint) {}

  close(): void {
    this.agent.destroy();
  }

  async ping(timeoutMs = 2_000): Promise<void> {
    const text = await this.text("GET", "/_ping", undefined, timeoutMs);
    if (text.trim() !== "OK") throw new EngineError(`the engine answered ${JSON.stringify(text.slice(0, 100))} to a ping`);
  }

  async version(): Promise<{ Version: string; ApiVersion?: string; Components?: Array<{ Name: string }> }> {
    return JSON.parse(await this.text("GET", "/version")) as { Version: string };
  }

  /** Whether the image is present locally. */
  async hasImage(image: string): Promise<boolean> {
    try {
      await this.text("GET", `/images/${encodeURIComponent(image)}/json`);
      return true;
    } catch (error) {
      if (error instanceof EngineError && error.statusCode === 404) return false;
      throw error;
    }
  }

  /** The id of some image present locally, if any. */
  async anyImage(): Promise<string | undefined> {
    const images = JSON.parse(await this.text("GET", "/images/json")) as Array<{ Id?: string }>;
    return images.find((i) => typeof i.Id === "string")?.Id;
  }

  /** Pulls an image; the engine reports failures inside the stream, which end up here as an EngineError. */
  async pull(image: string, signal?: AbortSignal, auth?: RegistryAuth): Promise<void> {
    const { name, tag } = splitImage(image);
    const path = `/images/create?fromImage=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}`;
    // The Engine API takes a pull's login in this header (base64url JSON), in the request only.
    const headers = auth ? { "x-registry-auth": registryAuthHeader(auth) } : undefined;
    const response = await this.open("POST", path, undefined, 60_000, signal, headers);
    // Progress and failures come as JSON lines in the stream (the status is 200 either way).
    let failure: string | undefined;
    const feed = jsonLines((message) => {
      const { error, errorDetail } = message as { error?: string; errorDetail?: { message?: string } };
      failure ??= errorDetail?.message ?? error;
    });
    for await (const chunk of response) feed(chunk as Buffer);
    if (failure) throw new EngineError(failure);
  }

  /** An image of the root file system in `tar` (`docker import`); its id. */
  async importImage(tar: Buffer, repo: string): Promise<string> {
    const response = await this.open("POST", `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=latest`, tar);
    let id: string | undefined;
    let failure: string | undefined;
    const feed = jsonLines((message) => {
      const { status, error, errorDetail } = message as { status?: string; error?: string; errorDetail?: { message?: string } };
      // The engine's last word is the image's id (docker: {"status":"sha256:..."}; podman's service the same).
      if (typeof status === "string" && /^sha256:[0-9a-f]{64}$/.test(status)) id = status;
      failure ??= errorDetail?.message ?? error;
    });
    for await (const chunk of response) feed(chunk as Buffer);
    if (failure) throw new EngineError(failure);
    if (id === undefined) throw new EngineError("the engine took the image but did not say its id");
    return id;
  }

  async removeImage(id: string): Promise<void> {
    await this.text("DELETE", `/images/${encodeURIComponent(id)}?force=true`).catch(ignoreGone);
  }

  async createContainer(name: string, config: ContainerCreate): Promise<string> {
    const body = await this.json<{ Id: string }>("POST", `/containers/create?name=${encodeURIComponent(name)}`, config);
    return body.Id;
  }

  async startContainer(id: string): Promise<void> {
    await this.text("POST", `/containers/${id}/start`);
  }

  /** Resolves with the exit code once the container has stopped. */
  async waitContainer(id: string): Promise<number> {
    const body = await this.json<{ StatusCode: number }>("POST", `/containers/${id}/wait?condition=not-running`, undefined, 0);
    return body.StatusCode;
  }

  async inspectContainer(id: string): Promise<{ State: ContainerState }> {
    return this.json("GET", `/containers/${id}/json`);
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    await this.text("POST", `/containers/${id}/stop?t=${graceSeconds}`, undefined, 0).catch(ignoreGone);
  }

  async killContainer(id: string, signal = "SIGKILL"): Promise<void> {
    await this.text("POST", `/containers/${id}/kill?signal=${signal}`).catch(ignoreGone);
  }

  async removeContainer(id: string): Promise<void> {
    await this.text("DELETE", `/containers/${id}?force=true&v=true`).catch(ignoreGone);
  }

  async listContainers(label: string): Promise<Array<{ Id: string; Labels: Record<string, string>; State: string }>> {
    const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
    return this.json("GET", `/containers/json?all=true&filters=${filters}`);
  }

  /** The container's output as it comes, stdout and stderr in the order written (a multiplexed stream). */
  async followLogs(id: string): Promise<IncomingMessage> {
    return this.open("GET", `/containers/${id}/logs?follow=true&stdout=true&stderr=true`);
  }

  /** The container's whole output so far (stdout and stderr as written), demultiplexed. */
  async logs(id: string): Promise<Buffer> {
    const response = await this.open("GET", `/containers/${id}/logs?stdout=true&stderr=true`);
    const chunks: Buffer[] = [];
    const demux = new LogDemuxer((chunk) => chunks.push(Buffer.from(chunk)));
    for await (const data of response) demux.push(data as Buffer);
    return Buffer.concat(chunks);
  }

  /** `options`: driver options (podman needs `isolate` to keep networks apart; docker does that by itself). */
  async createNetwork(
    name: string,
    subnet: string,
    gateway: string,
    labels: Record<string, string>,
    options: Record<string, string> = {},
  ): Promise<string> {
    const body = await this.json<{ Id: string }>("POST", "/networks/create", {
      Name: name,
      Driver: "bridge",
      CheckDuplicate: true,
      Labels: labels,
      Options: options,
      IPAM: { Driver: "default", Config: [{ Subnet: subnet, Gateway: gateway }] },
    });
    return body.Id;
  }

  async removeNetwork(id: string): Promise<void> {
    await this.text("DELETE", `/networks/${encodeURIComponent(id)}`).catch(ignoreGone);
  }

  async listNetworks(label: string): Promise<Array<{ Id: string; Name: string; Labels: Record<string, string> | null }>> {
    const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
    return this.json("GET", `/networks?filters=${filters}`);
  }

  // ---- transport ----------------------------------------------------------

  private async json<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    return JSON.parse(await this.text(method, path, body, timeoutMs)) as T;
  }

  private async text(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<string> {
    const response = await this.open(method, path, body, timeoutMs);
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  /** The response once its status is known to be a success; otherwise an EngineError with the engine's message. */
  private open(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = 60_000,
    signal?: AbortSignal,
    extraHeaders?: Record<string, string>,
  ): Promise<IncomingMessage> {
    // A Buffer goes as it is (an image's tar), anything else as JSON.
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const type = Buffer.isBuffer(body) ? "application/x-tar" : "application/json";
    return new Promise((resolve, reject) => {
      const req = request(
        {
          ...this.endpoint,
          agent: this.agent,
          method,
          signal,
          path: `/${API_VERSION}${path}`,
          headers: { ...(payload ? { "content-type": type, "content-length": payload.length } : {}), ...extraHeaders, host: "docker" },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          if (status < 400) {
            resolve(response);
            return;
          }
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let message = text.trim();
            try {
              message = (JSON.parse(text) as { message?: string }).message ?? message;
            } catch {
              // Plain text.
            }
            reject(new EngineError(message || `HTTP ${status}`, status));
          });
          response.on("error", reject);
        },
      );
      if (timeoutMs > 0)
        req.setTimeout(timeoutMs, () => req.destroy(new EngineError(`the engine did not answer ${method} ${path} within ${timeoutMs} ms`)));
      req.on("error", (error) =>
        reject(error instanceof EngineError ? error : new EngineError(`cannot reach the engine: ${error.message}`)),
      );
      req.end(payload);
    });
  }
}

function ignoreGone(error: unknown): void {
  if (error instanceof EngineError && (error.statusCode === 404 || error.statusCode === 304)) return;
  throw error;
}

/** `name[:tag][@digest]` as the pull call wants it. */
export function splitImage(image: string): { name: string; tag: string } {
  const at = image.indexOf("@");
  if (at >= 0) return { name: image.slice(0, at), tag: image.slice(at + 1) };
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  if (colon > slash) return { name: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { name: image, tag: "latest" };
}

/** Docker's multiplexed log stream: 8-byte headers (stream, 0, 0, 0, size big-endian) before each payload. */
export class LogDemuxer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onPayload: (chunk: Buffer) => void) {}

  push(data: Buffer): void {
    let buffer = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    while (buffer.length >= 8) {
      const size = buffer.readUInt32BE(4);
      if (buffer.length < 8 + size) break;
      if (size > 0) this.onPayload(buffer.subarray(8, 8 + size));
      buffer = buffer.subarray(8 + size);
    }
    this.pending = buffer;
  }
}
