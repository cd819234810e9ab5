/**
 * A run session's TCP listener, where the member helpers on the nodes
 * connect (member-helper.mjs): JSON lines both ways. A helper's first line
 * says who it is (`hello`: the run's token, its member's key, its node and
 * job); the connection's source address is the member's address, the one
 * its siblings reach it at. Each connection is then handed to the member's
 * handler by key; a helper that comes before its member is asked for (a
 * restarted troupe's re-attach) waits for it.
 */
import { createServer, type Server, type Socket } from "node:net";

export interface Hello {
  key: string;
  node: string;
  job: string;
  /** Its command was already running (the helper connects again after a restart of troupe). */
  running: boolean;
  /** Slurm's GPU variables in the helper's environment (CUDA_VISIBLE_DEVICES, SLURM_STEP_GPUS, ...): the member's GPUs. */
  gpuEnv: Record<string, string>;
}

/** What a helper says after its hello. */
export type HelperMessage =
  | { t: "ready" }
  | { t: "started"; again?: boolean; at?: number }
  /** `verdict`: a container's troupe-init's, as the helper read it (troupe checks it). */
  | { t: "exit"; code: number; verdict?: string }
  /** `image`: the member's image could not be had on its node. */
  | { t: "failed"; message: string; image?: boolean }
  | { t: "stopped" }
  /** A container's troupe-init said it stopped the command for a restart in place (troupe checks its nonce). */
  | { t: "restarted"; stopped: string }
  /** Slurm signalled the member's step (its command's end, if it had one, is Slurm's doing). */
  | { t: "signalled"; code?: number };

export interface HelperLink {
  readonly hello: Hello;
  /** The member's address, as its connection came from it. */
  readonly address: string;
  send(message: object): void;
  /** Ends the connection. */
  close(): void;
}

export interface HelperHandler {
  connected(link: HelperLink): void;
  message(link: HelperLink, message: HelperMessage): void;
  disconnected(link: HelperLink): void;
}

export class HelperListener {
  private readonly handlers = new Map<string, HelperHandler>();
  private readonly waiting = new Map<string, { link: HelperLink; messages: HelperMessage[]; gone: boolean }>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly token: string,
    /** host:port, as the helpers connect to it. */
    readonly address: string,
  ) {
    server.on("connection", (socket) => this.accept(socket));
  }

  /** Listens on `host` (an address of this machine the nodes reach), any free port. */
  static open(host: string, token: string): Promise<HelperListener> {
    const server = createServer();
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, host, () => {
        server.off("error", reject);
        const { port } = server.address() as { port: number };
        resolve(new HelperListener(server, token, `${host}:${port}`));
      });
    });
  }

  /** The member `key`'s connections (now, and any later one) go to `handler`. */
  route(key: string, handler: HelperHandler): void {
    this.handlers.set(key, handler);
    const early = this.waiting.get(key);
    if (!early) return;
    this.waiting.delete(key);
    handler.connected(early.link);
    for (const message of early.messages) handler.message(early.link, message);
    if (early.gone) handler.disconnected(early.link);
  }

  unroute(key: string): void {
    this.handlers.delete(key);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let buffer = "";
    let link: HelperLink | undefined;
    socket.on("data", (data: Buffer) => {
      buffer += data.toString();
      for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 1);
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          socket.destroy(); // not a helper of ours
          return;
        }
        if (!link) link = this.greet(socket, message);
        else this.deliver(link, message as HelperMessage);
        if (!link) return;
      }
    });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (link) this.gone(link);
    });
  }

  /** The first line: a hello with the run's token, else the connection is dropped. */
  private greet(socket: Socket, message: Record<string, unknown>): HelperLink | undefined {
    if (message.t !== "hello" || message.token !== this.token || typeof message.key !== "string") {
      socket.destroy();
      return undefined;
    }
    const hello: Hello = {
      key: message.key,
      node: String(message.node ?? ""),
      job: String(message.job ?? ""),
      running: message.running === true,
      gpuEnv: stringsOf(message.gpuEnv),
    };
    const link: HelperLink = {
      hello,
      address: (socket.remoteAddress ?? "").replace(/^::ffff:/, ""),
      send: (reply) => {
        if (socket.writable) socket.write(`${JSON.stringify(reply)}\n`);
      },
      close: () => socket.end(),
    };
    const handler = this.handlers.get(hello.key);
    if (handler) handler.connected(link);
    else this.waiting.set(hello.key, { link, messages: [], gone: false });
    return link;
  }

  private deliver(link: HelperLink, message: HelperMessage): void {
    const handler = this.handlers.get(link.hello.key);
    if (handler) return handler.message(link, message);
    const early = this.waiting.get(link.hello.key);
    if (early?.link === link) early.messages.push(message);
  }

  private gone(link: HelperLink): void {
    const handler = this.handlers.get(link.hello.key);
    if (handler) return handler.disconnected(link);
    const early = this.waiting.get(link.hello.key);
    if (early?.link === link) early.gone = true;
  }
}

/** The string fields of a JSON object (nothing else a helper might send). */
function stringsOf(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null) return {};
  return Object.fromEntries(Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
}
