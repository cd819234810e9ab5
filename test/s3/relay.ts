/** A TCP relay for the S3 tests: what a server that goes away does to its clients. */
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";

/**
 * A TCP relay in front of the server that can drop what is in flight and stop listening, as a server that is
 * stopped does (connections reset, then refused). A relay, not the server itself: CI's server is shared by
 * every S3 test of the run.
 */
export class Relay {
  private listener: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** Called with each client connection's first request bytes; returning true drops that connection. */
  dropWhen: (connection: number, received: number) => boolean = () => false;
  private connections = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async listen(port = 0): Promise<void> {
    const listener = createServer((client) => {
      const connection = ++this.connections;
      const upstream = connect(this.target.port, this.target.host);
      this.sockets.add(client).add(upstream);
      let received = 0;
      client.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (this.dropWhen(connection, received)) {
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk) => client.write(chunk));
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
