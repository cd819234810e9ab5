/**
 * GET /api/workflow/{id}/logs?follow: a client that goes away while the
 * server waits for it to take what was written (backpressure) ends the
 * follow, and the log file is let go. Before, the server waited for a
 * `drain` that never came: the handler hung and the file stayed open.
 */
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { registerLogsRoute } from "../../src/server/logs-route.js";
import type { RunStore } from "../../src/store/index.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Whether this process holds `path` open. */
function holds(path: string): boolean {
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) return true;
    } catch {
      // Closed meanwhile.
    }
  }
  return false;
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe("following a log", () => {
  it("a client that goes while the server is backpressured ends the follow and frees the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-logs-follow-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, "t.log");
    // Far more than the socket's buffers hold: the server has to wait for the client.
    writeFileSync(log, Buffer.alloc(64 * 1024 * 1024, "a"));
    const store = {
      attempts: () => [{ task: "t", retry_id: 0, log_path: log }],
      attemptStatus: () => "RUNNING", // never ends by itself: only the client's going ends the follow
    } as unknown as RunStore;
    const app = Fastify({ logger: false });
    cleanups.push(() => app.close());
    app.addHook("onRequest", async (request) => {
      (request as unknown as { owner: unknown }).owner = { name: "alice", admin: false };
    });
    registerLogsRoute(app, store, (id) => id);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = app.server.address() as { port: number };

    const socket = connect(port, "127.0.0.1");
    cleanups.push(() => void socket.destroy());
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    let received = 0;
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length;
      socket.pause(); // takes a little, then nothing more
    });
    socket.write("GET /api/workflow/w/logs?follow=true HTTP/1.1\r\nhost: localhost\r\n\r\n");
    expect(await until(() => received > 0 && holds(log), 5_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the buffers fill; the server waits on the client
    expect(holds(log)).toBe(true);
    socket.destroy();
    expect(await until(() => !holds(log), 3_000), "the log is still open after the client went").toBe(true);
  }, 20_000);
});
