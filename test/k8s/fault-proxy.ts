/**
 * A plain-HTTP proxy on loopback in front of the test cluster's API server that answers chosen requests itself,
 * as a loaded or failing API server would (429 with Retry-After, 503, a watch that ends with 410 Expired), and
 * forwards the rest with the administrator's client certificate. The API server cannot be made to answer so at
 * will; everything else the tests see is the real one's.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { request } from "node:https";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

export interface Fault {
  method: string;
  /** Matched against the path (without the query). */
  path: RegExp;
  /** Only watches (`watch=true`), or only other requests. */
  watch?: boolean;
  answer: 429 | 503 | 410;
  /** How many matching requests get it. */
  times: number;
}

export class FaultProxy {
  readonly faults: Fault[] = [];
  /** Every request seen: `METHOD path?query`. */
  readonly seen: string[] = [];
  /** How many requests each fault answered. */
  readonly hits = new Map<Fault, number>();
  private server!: Server;
  private readonly upstream: URL;
  private agent: import("node:https").Agent | undefined;

  constructor(private readonly admin: KubeConfig) {
    this.upstream = new URL(admin.getCurrentCluster()!.server);
  }

  async start(): Promise<void> {
    const opts: import("node:https").RequestOptions = {};
    await this.admin.applyToHTTPSOptions(opts);
    this.agent = opts.agent as import("node:https").Agent;
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
  }

  /** A kubeconfig for the proxy (no credentials: the proxy adds the administrator's). */
  config(): KubeConfig {
    const config = new KubeConfig();
    const port = (this.server.address() as AddressInfo).port;
    config.loadFromOptions({
      clusters: [{ name: "proxy", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: "proxy-user" }],
      contexts: [{ name: "proxy", cluster: "proxy", user: "proxy-user" }],
      currentContext: "proxy",
    });
    return config;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://proxy");
    const watch = url.searchParams.get("watch") === "true";
    this.seen.push(`${req.method} ${url.pathname}${url.search}`);
    const fault = this.faults.find(
      (f) =>
        f.method === req.method &&
        f.path.test(url.pathname) &&
        (f.watch === undefined || f.watch === watch) &&
        (this.hits.get(f) ?? 0) < f.times,
    );
    if (fault) {
      this.hits.set(fault, (this.hits.get(fault) ?? 0) + 1);
      req.resume();
      const status = (code: number, reason: string) =>
        JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message: `injected ${code}`, reason, code });
      if (fault.answer === 410) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(`${JSON.stringify({ type: "ERROR", object: JSON.parse(status(410, "Expired")) })}\n`);
      } else if (fault.answer === 429) {
        res.writeHead(429, { "content-type": "application/json", "retry-after": "0" });
        res.end(status(429, "TooManyRequests"));
      } else {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(status(503, "ServiceUnavailable"));
      }
      return;
    }
    const headers = { ...req.headers, host: this.upstream.host };
    const upstream = request(
      { host: this.upstream.hostname, port: this.upstream.port, path: req.url, method: req.method, headers, agent: this.agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        // A watch's headers come before any event: passed on at once, as the API server sends them.
        res.flushHeaders();
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
