/**
 * The server's log: a real `troupe server` on loopback writes HOME/server.log,
 * JSON lines from both of its threads: each run's start and end with its id,
 * one line per request with the user (never the token: not from the header,
 * not from a query string), and what it tolerated, here a client that went
 * away in the middle of a run's stream.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, sleepMarkers, troupe, waitFor } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
let token: string;
const sleepers = sleepMarkers(7);

type LogLine = Record<string, unknown> & { level: string; time: string; msg: string };

/** Every line of the log, each parsed (a line that is not JSON fails the test). */
function logLines(): LogLine[] {
  const text = fs.readFileSync(path.join(serverHome, "server.log"), "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as LogLine);
}

async function api(method: string, route: string, body?: object) {
  const response = await fetch(server!.url + route, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function submit(spec: string): Promise<string> {
  const submitted = await api("POST", "/api/pool/default/workflow", { spec });
  expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
  return submitted.json.id as string;
}

async function statusOf(id: string): Promise<string> {
  return (await api("GET", `/api/workflow/${id}`)).json.status as string;
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  const created = await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home });
  expect(created.code, created.stderr).toBe(0);
  token = created.stdout.trim();
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none", "--log-level", "debug"]);
}, 200_000);

afterAll(async () => {
  await server?.stop();
  sleepers.killAll();
  home?.remove();
});

describe("the server's log", () => {
  it("is JSON lines under the home, only its owner's to read, with each run's start and end by its id", async () => {
    const id = await submit(
      `workflow:\n  name: logged-${random()}\n  tasks:\n  - name: hello\n    image: alpine:3.18\n    command: ["true"]\n`,
    );
    let status = "";
    for (let i = 0; i < 200 && !["COMPLETED", "FAILED"].includes(status); i++) {
      status = await statusOf(id);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe("COMPLETED");
    const file = path.join(serverHome, "server.log");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const ended = await waitFor(
      () => logLines().find((line) => line.run === id && line.msg === "run ended"),
      (line) => line !== undefined,
      5_000,
    );
    expect(ended).toMatchObject({ level: "info", status: "COMPLETED", thread: "main" });
    expect(logLines().find((line) => line.run === id && line.msg === "run started")).toMatchObject({ user: "alice", pool: "default" });
    // The lines of the operator's stdout are there too.
    expect(logLines().some((line) => /^listening on http:/.test(line.msg))).toBe(true);
  });

  it("has one line per request, with the user and never the token", async () => {
    // A token in a query string (no route takes one, but a client may send it) is taken out of the URL logged.
    const response = await fetch(`${server!.url}/api/workflow?token=${token}&limit=1`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(400);
    const refused = await fetch(`${server!.url}/api/workflow`, { headers: { authorization: "Bearer not-a-token" } });
    expect(refused.status).toBe(401);
    const lines = await waitFor(
      () => logLines().filter((line) => line.msg === "request"),
      (requests) => requests.some((line) => line.status === 401),
      5_000,
    );
    expect(lines.find((line) => (line.req as { method: string }).method === "POST")).toMatchObject({
      thread: "http",
      status: 201,
      user: "alice",
    });
    expect(lines.find((line) => line.status === 400)?.req).toEqual({ method: "GET", url: "/api/workflow?token=[redacted]&limit=1" });
    const text = fs.readFileSync(path.join(serverHome, "server.log"), "utf8");
    expect(text).not.toContain(token);
    expect(text).not.toContain("not-a-token");
  });

  it("says when a client went away in the middle of a run's stream", async () => {
    const id = await submit(
      `workflow:\n  name: followed-${random()}\n  tasks:\n  - name: nap\n    image: alpine:3.18\n    command: ["sleep", "${sleepers.sleep(60)}"]\n`,
    );
    const aborted = new AbortController();
    const response = await fetch(`${server!.url}/api/workflow/${id}/stream?follow=true`, {
      headers: { authorization: `Bearer ${token}` },
      signal: aborted.signal,
    });
    expect(response.status).toBe(200);
    // The first line (the run's first transition) is there: the stream is under way when the client leaves.
    const reader = response.body!.getReader();
    await reader.read();
    aborted.abort();
    const gone = await waitFor(
      () => logLines().find((line) => line.run === id && /client went away/.test(line.msg)),
      (line) => line !== undefined,
      10_000,
    );
    expect(gone).toMatchObject({ level: "debug", thread: "http", user: "alice" });
    expect((await api("POST", `/api/workflow/${id}/cancel`, { force: true })).status).toBe(202);
  });
});
