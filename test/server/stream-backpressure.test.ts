/**
 * A workflow's stream (GET /api/workflow/{id}/stream?follow=true) to a client
 * that reads slowly, over real HTTP from a real server: the server waits for
 * the socket to drain many times, sends every byte of the task's output in
 * order, and leaks nothing while it waits (a "close" listener left at every
 * wait made Node warn, MaxListenersExceededWarning, on every long stream).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let server: StartedServer;
let token: string;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  const serverHome = home.outsideTmp();
  token = (await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home })).stdout.trim();
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
}, 200_000);
afterAll(async () => {
  await server?.stop();
  home?.remove();
});

const LINES = 200_000;

describe("a workflow's stream to a slow reader", () => {
  it("sends the whole output in order, waiting for the socket to drain, with no listener leak", async () => {
    const spec = `workflow:\n  name: loud-${random(3)}\n  tasks:\n  - {name: loud, image: alpine:3.18, command: [sh, -c, "seq 1 ${LINES}"]}\n`;
    const submitted = await fetch(`${server.url}/api/pool/default/workflow`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ spec }),
    });
    expect(submitted.status).toBe(201);
    const { id } = (await submitted.json()) as { id: string };
    const response = await fetch(`${server.url}/api/workflow/${id}/stream?follow=true&only=output`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let output = "";
    let end: { status: string } | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += value;
      for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
        const line = JSON.parse(buffer.slice(0, at)) as { type: string; data?: string; status?: string };
        buffer = buffer.slice(at + 1);
        if (line.type === "output") output += line.data;
        if (line.type === "end") end = { status: line.status! };
      }
      // A slow reader: the server's writes outrun it and wait for the socket to drain.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(end).toEqual({ status: "COMPLETED" });
    const numbers = output.trimEnd().split("\n");
    expect(numbers.length).toBe(LINES);
    expect(numbers[0]).toBe("1");
    expect(numbers.at(-1)).toBe(String(LINES));
    expect(server.err()).not.toContain("MaxListenersExceededWarning");
  }, 120_000);
});
