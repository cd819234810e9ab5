/** An S3 endpoint on loopback whose every answer a test chooses (real HTTP: the SDK cannot tell it from a store). */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dataCredentialFrom, objectStoreDataPlane } from "../../src/data/index.js";
import type { DataPlane } from "../../src/port/index.js";

export type Handler = (request: IncomingMessage, response: ServerResponse, body: Buffer) => void;

export class FakeStore {
  private server: Server | undefined;
  port = 0;
  handle: Handler = (_request, response) => response.end();
  /** "METHOD URL" of every request, in order. */
  readonly seen: string[] = [];

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => {
        this.seen.push(`${request.method} ${request.url}`);
        this.handle(request, response, Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  close(): void {
    this.server?.closeAllConnections();
    this.server?.close();
  }
}

export const isHeadBucket = (r: IncomingMessage, bucket = "b") =>
  r.method === "HEAD" && (r.url === `/${bucket}` || r.url === `/${bucket}/`);

export function xmlError(response: ServerResponse, status: number, code: string, message: string): void {
  response.writeHead(status, { "content-type": "application/xml" });
  response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

export function listing(response: ServerResponse, keys: Array<[string, string]>): void {
  response.writeHead(200, { "content-type": "application/xml" });
  const contents = keys.map(([key, body]) => `<Contents><Key>${key}</Key><Size>${body.length}</Size><ETag>"x"</ETag></Contents>`).join("");
  response.end(
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`,
  );
}

/** troupe's data plane for bucket `b` of `store`, its requests tried `attempts` times. */
export function fakeStorePlane(store: FakeStore, attempts: number): DataPlane {
  return objectStoreDataPlane({
    credentials: () => [
      dataCredentialFrom("fake", { endpoint: "s3://b", access_key_id: "id", access_key: "key", override_url: store.url }),
    ],
    retry: { attempts, firstDelayMs: 10 },
  });
}
