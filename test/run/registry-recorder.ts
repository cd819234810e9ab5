/**
 * A stand-in container registry on this machine, for tests of registry
 * logins (no registry that serves images can run here: none can be pulled):
 * it asks for HTTP Basic auth as a registry does (401 with a challenge on
 * /v2/), notes the logins it is sent, and has no image (404 once
 * authorised), so every pull fails after its login was seen.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** The stand-in registry: the Authorization headers it was sent, by path. */
export class LoginRecorder {
  readonly seen: Array<{ path: string; authorization?: string }> = [];
  private readonly server = http.createServer((request, response) => {
    const authorization = request.headers.authorization;
    this.seen.push({ path: request.url ?? "", authorization });
    const known = [...this.logins].some((l) => authorization === `Basic ${Buffer.from(l).toString("base64")}`);
    response.setHeader("docker-distribution-api-version", "registry/2.0");
    if (!known) {
      response.writeHead(401, { "www-authenticate": 'Basic realm="troupe-test"', "content-type": "application/json" });
      response.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
    } else if (request.url === "/v2/") {
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    } else {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
    }
  });
  /** `user:password` pairs it takes. */
  readonly logins = new Set<string>();
  address = "";

  /** `host`: where it listens (loopback; a Slurm test cluster's nodes reach the login node's bridge address). */
  async start(host = "127.0.0.1"): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    this.address = `${host}:${(this.server.address() as AddressInfo).port}`;
  }

  /** The logins (user:password) sent for paths under `repo`. */
  loginsFor(repo: string): string[] {
    return (
      this.seen
        .filter((s) => s.path.startsWith(`/v2/${repo}/`) && s.authorization?.startsWith("Basic "))
        .map((s) => Buffer.from(s.authorization!.slice(6), "base64").toString())
        // podman sends an empty login (":") when it has none.
        .filter((login) => login !== ":")
    );
  }

  requestsFor(repo: string): number {
    return this.seen.filter((s) => s.path.startsWith(`/v2/${repo}/`)).length;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
