/** A TCP relay for the S3 tests: what a server that goes away, or a connection that breaks, does to its clients. */
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";

/**
 * A TCP relay in front of the server that can drop what is in flight and stop listening, as a server that is
 * stopped does (connections reset, then refused), or break one connection while the others go on. It counts
 * the bytes it passes each way. A relay, not the server itself: CI's server is shared by every S3 test of the run.
 */
export class Relay {
  private listener: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** Called with each client connection's first request bytes; returning true drops that connection. */
  dropWhen: (connection: number, received: number) => boolean = () => false;
  /**
   * Called with each piece on its way to the server, before it is passed on, and the bytes passed that way so
   * far (this piece not included); returning true resets that connection (the client sees ECONNRESET) instead.
   */
  cutToServer: (piece: Buffer, passed: number) => boolean = () => false;
  /** The same for each piece on its way to the client. */
  cutToClient: (piece: Buffer, passed: number) => boolean = () => false;
  /** While set, what clients send waits for it to settle (a test changes the store meanwhile). */
  hold: Promise<unknown> | undefined;
  /** Bytes passed on so far, each way. */
  readonly passed = { toServer: 0, toClient: 0 };
  private connections = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async listen(port = 0): Promise<void> {
    const listener = createServer((client) => {
      const connection = ++this.connections;
      const upstream = connect(this.target.port, this.target.host);
      this.sockets.add(client).add(upstream);
      let received = 0;
      const cut = () => {
        client.resetAndDestroy();
        upstream.destroy();
      };
      const toServer = (chunk: Buffer) => {
        if (client.destroyed) return;
        if (this.cutToServer(chunk, this.passed.toServer)) return cut();
        this.passed.toServer += chunk.length;
        upstream.write(chunk);
      };
      // What the client sends, in order, each piece after any hold that was set when it came.
      let sending: Promise<unknown> = Promise.resolve();
      client.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (this.dropWhen(connection, received)) return cut();
        const hold = this.hold;
        sending = hold ? sending.then(() => hold.catch(() => undefined)).then(() => toServer(chunk)) : sending.then(() => toServer(chunk));
      });
      upstream.on("data", (chunk: Buffer) => {
        if (this.cutToClient(chunk, this.passed.toClient)) return cut();
        this.passed.toClient += chunk.length;
        client.write(chunk);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("close", end).on("error", end);
      upstream.on("close", end).on("error", end);
    });
    await new Promise<void>((resolve) => listener.listen(port, "127.0.0.1", resolve));
    this.listener = listener;
    this.port = (listener.address() as AddressInfo).port;
  }

  /** Stops listening and resets every open connection (the server is gone). */
  async stop(): Promise<void> {
    for (const socket of this.sockets) if (!socket.destroyed) socket.resetAndDestroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.listener ? this.listener.close(() => resolve()) : resolve()));
    this.listener = undefined;
  }
}
