/**
 * Acceptance: `workflow submit --wait` outlives a restart of the server. The
 * server (real, on a fixed loopback port) stops while the client follows a
 * run; the client says the stream broke off and waits, the next server start
 * resumes the run, and the client ends with the run's summary and exit code.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, TestHome, ensureBuilt, random, troupe, waitFor } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
let port: number;
let token: string;

/** A port free now (the servers of this file take it in turn). */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const serve = () => startServer(serverHome, ["--runtime", "host", "--isolation", "none", "--port", String(port)]);

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  token = (await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home })).stdout.trim();
  port = await freePort();
  server = await serve();
}, 200_000);

afterAll(async () => {
  await server?.stop();
  home?.remove();
});

describe("troupe workflow submit --wait across a server restart", () => {
  it("waits while the server is away and ends with the resumed run's summary", async () => {
    const gate = path.join(home.outsideTmp(), `go-${random()}`);
    const file = home.spec(
      "restart",
      `workflow:\n  name: across-${random()}\n  tasks:\n  - name: steady\n    image: alpine:3.18\n    command: ["sh", "-c", "echo started; while [ ! -e ${gate} ]; do sleep 0.05; done; echo finished"]\n`,
    );
    const child = spawn(process.execPath, [BIN, "workflow", "submit", file, "--wait"], {
      cwd: ROOT,
      env: {
        ...process.env,
        TROUPE_SERVER: `http://127.0.0.1:${port}`,
        TROUPE_TOKEN: token,
        XDG_CONFIG_HOME: home.outsideTmp(),
        NO_COLOR: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    try {
      await waitFor(
        () => out,
        (o) => o.includes("steady | started"),
        20_000,
      );
      // The server stops (its task goes on under its keeper); the client waits.
      const stopping = server!.child;
      await new Promise<void>((resolve) => {
        stopping.once("exit", () => resolve());
        stopping.kill("SIGTERM");
      });
      await waitFor(
        () => out,
        (o) => o.includes("broke off"),
        20_000,
      );
      expect(out).toMatch(/the server's stream of \S+ broke off; waiting for its end/);
      expect(child.exitCode).toBeNull();
      server = await serve();
      fs.writeFileSync(gate, "");
      expect(await exited).toBe(0);
      expect(out).toMatch(/^run \S+: COMPLETED/m);
      expect(out).toMatch(/^steady +steady-group +COMPLETED +0 /m);
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
    }
  });
});
