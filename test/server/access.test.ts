/**
 * Who reads what, over real HTTP: two real servers, one as OSMO is (every user
 * reads every workflow: list, query, spec with its environment, events, logs)
 * and one with `--private-workflows` (only the submitter and admins; others
 * get 404, as for no workflow). And the Authorization header as RFC 7235 has
 * it, health with a query string, a cancel without a body.
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, sleepMarkers, troupe, type RunRecord } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
const sleepers = sleepMarkers(12);

interface Served {
  server: StartedServer;
  tokens: { alice: string; bob: string; admin: string };
  /** alice's workflow, ended. */
  done: string;
}
const servers: Partial<Record<"open" | "private", Served>> = {};

async function serve(args: string[]): Promise<Served> {
  const serverHome = home.outsideTmp();
  const token = async (name: string, admin = false) =>
    (
      await troupe(["server", "token", "create", name, "--home", serverHome, ...(admin ? ["--admin"] : [])], { home: home.home })
    ).stdout.trim();
  const tokens = { alice: await token("alice"), bob: await token("bob"), admin: await token("boss", true) };
  const server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none", ...args]);
  const submitted = await api(server.url, "POST", "/api/pool/default/workflow", tokens.alice, JSON.stringify({ spec: SECRET }));
  expect(submitted.status, submitted.text).toBe(201);
  const done = (submitted.json as { id: string }).id;
  await completed(server.url, done, tokens.alice);
  return { server, tokens, done };
}

async function completed(url: string, id: string, token: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const record = (await api(url, "GET", `/api/workflow/${id}`, token)).json as RunRecord;
    if (record.status === "COMPLETED") return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${id} did not complete`);
}

const SECRET = `workflow:
  name: secret-${random()}
  tasks:
  - name: talker
    image: alpine:3.18
    environment:
      API_KEY: hunter2
    command: ["sh", "-c", "echo the key is $API_KEY"]
`;

async function api(url: string, method: string, route: string, token: string | undefined, body?: string) {
  const response = await fetch(url + route, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

/** One request written by hand: exactly these header lines, no body (the server closes the connection once it answered). */
function raw(url: string, lines: string[]): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write([...lines, "Connection: close", "", ""].join("\r\n")));
    let text = "";
    socket.setEncoding("utf8").on("data", (d: string) => (text += d));
    socket.on("error", reject);
    socket.on("end", () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), text }));
  });
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  [servers.open, servers.private] = await Promise.all([serve([]), serve(["--private-workflows"])]);
}, 120_000);

afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.server.stop()));
  sleepers.killAll();
  home?.remove();
});

/** Every read of alice's workflow, as `token`: status and text of each. */
async function reads(served: Served, token: string) {
  const { url } = served.server;
  const id = served.done;
  const list = await api(url, "GET", "/api/workflow?all_users=true", token);
  const byUser = await api(url, "GET", "/api/workflow?user=alice", token);
  const ids = (response: typeof list) => ((response.json as { workflows: Array<{ id: string }> }).workflows ?? []).map((w) => w.id);
  return {
    listed: ids(list).includes(id),
    listedByUser: ids(byUser).includes(id),
    query: await api(url, "GET", `/api/workflow/${id}`, token),
    spec: await api(url, "GET", `/api/workflow/${id}/spec`, token),
    events: await api(url, "GET", `/api/workflow/${id}/events`, token),
    logs: await api(url, "GET", `/api/workflow/${id}/logs`, token),
    follow: await api(url, "GET", `/api/workflow/${id}/logs?follow=true`, token),
    stream: await api(url, "GET", `/api/workflow/${id}/stream?follow=true`, token),
    errorLogs: await api(url, "GET", `/api/workflow/${id}/error_logs`, token),
  };
}

function expectReadable(r: Awaited<ReturnType<typeof reads>>) {
  expect(r.listed).toBe(true);
  expect(r.listedByUser).toBe(true);
  expect(r.query.status).toBe(200);
  expect(r.spec.status).toBe(200);
  expect(r.spec.text).toContain("hunter2");
  expect(r.events.status).toBe(200);
  expect(r.logs.text).toBe("the key is hunter2\n");
  expect(r.follow.text).toBe("the key is hunter2\n");
  expect(r.stream.text).toContain('"data":"the key is hunter2\\n"');
  expect(r.errorLogs.status).toBe(200);
}

describe("reads across users", () => {
  it("by default (as in OSMO) any user reads any workflow: list, query, spec, events, logs, follow", async () => {
    expectReadable(await reads(servers.open!, servers.open!.tokens.bob));
  });

  it("with --private-workflows, only the submitter and admins do; another user gets 404 everywhere, and a list without it", async () => {
    const served = servers.private!;
    expectReadable(await reads(served, served.tokens.alice));
    expectReadable(await reads(served, served.tokens.admin));
    const bob = await reads(served, served.tokens.bob);
    expect(bob.listed).toBe(false);
    expect(bob.listedByUser).toBe(false);
    for (const response of [bob.query, bob.spec, bob.events, bob.logs, bob.follow, bob.stream, bob.errorLogs]) {
      expect(response.status).toBe(404);
      expect(response.text).not.toContain("hunter2");
      expect(response.text).toContain(`no workflow ${served.done}`);
    }
    // Nor may bob act on it (and learn that it exists), submit it again, or see its tags.
    for (const action of ["cancel", "restart"])
      expect((await api(served.server.url, "POST", `/api/workflow/${served.done}/${action}`, served.tokens.bob, "{}")).status).toBe(404);
    const tagBody = JSON.stringify({ add: ["secret-tag"] });
    expect((await api(served.server.url, "POST", `/api/workflow/${served.done}/tag`, served.tokens.bob, tagBody)).status).toBe(404);
    expect((await api(served.server.url, "POST", `/api/workflow/${served.done}/tag`, served.tokens.alice, tagBody)).status).toBe(200);
    expect((await api(served.server.url, "GET", "/api/tag", served.tokens.bob)).json).toEqual({ tags: [] });
    expect((await api(served.server.url, "GET", "/api/tag", served.tokens.admin)).json).toEqual({ tags: ["secret-tag"] });
    const resubmit = JSON.stringify({ workflow_id: served.done });
    const again = await api(served.server.url, "POST", "/api/pool/default/workflow", served.tokens.bob, resubmit);
    expect(again.status).toBe(404);
    expect(again.text).not.toContain("hunter2");
    // bob's own are his to read.
    const own = await api(served.server.url, "POST", "/api/pool/default/workflow", served.tokens.bob, JSON.stringify({ spec: SECRET }));
    const ownId = (own.json as { id: string }).id;
    await completed(served.server.url, ownId, served.tokens.bob);
    expect((await api(served.server.url, "GET", `/api/workflow/${ownId}`, served.tokens.bob)).status).toBe(200);
    // A prefix of both ids names, for each of them, their own (for an admin, either: none).
    const prefix = ownId.replace(/-\d+$/, "");
    expect(served.done.startsWith(prefix)).toBe(true);
    for (const [token, id] of [
      [served.tokens.bob, ownId],
      [served.tokens.alice, served.done],
    ] as const) {
      expect(((await api(served.server.url, "GET", `/api/workflow/${prefix}`, token)).json as RunRecord).id).toBe(id);
      expect((await api(served.server.url, "GET", `/api/workflow/${prefix}/logs`, token)).text).toBe("the key is hunter2\n");
    }
    expect((await api(served.server.url, "GET", `/api/workflow/${prefix}`, served.tokens.admin)).status).toBe(404);
    const listed = await api(served.server.url, "GET", "/api/workflow", served.tokens.bob);
    expect((listed.json as { workflows: Array<{ id: string; user: string }> }).workflows.map((w) => w.user)).toEqual(["bob"]);
  });
});

describe("HTTP as the RFC has it", () => {
  it("the Bearer scheme in any case, with several spaces: accepted; another scheme or no token: 401", async () => {
    const { server, tokens } = servers.open!;
    const { host } = new URL(server.url);
    for (const header of [`Bearer ${tokens.bob}`, `bearer ${tokens.bob}`, `BEARER    ${tokens.bob}`, `bEaReR \t${tokens.bob}  `]) {
      const response = await raw(server.url, ["GET /api/workflow?limit=1 HTTP/1.1", `Host: ${host}`, `Authorization: ${header}`]);
      expect(response.status, `${JSON.stringify(header)}: ${response.text}`).toBe(200);
    }
    for (const header of [`Basic ${tokens.bob}`, `Bearer`, `Bearer${tokens.bob}`, `Bearer a b`]) {
      const response = await raw(server.url, ["GET /api/workflow?limit=1 HTTP/1.1", `Host: ${host}`, `Authorization: ${header}`]);
      expect(response.status, header).toBe(401);
    }
  });

  it("health needs no token, with a query string too; other routes with a query string still do", async () => {
    const { url } = servers.open!.server;
    expect(await api(url, "GET", "/api/health?x=1", undefined)).toMatchObject({ status: 200, json: { status: "OK" } });
    expect((await api(url, "GET", "/api/openapi.json?x=1", undefined)).status).toBe(200);
    expect((await api(url, "GET", "/api/workflow?x=/api/health", undefined)).status).toBe(401);
    expect((await api(url, "GET", "/api/nothing?/api/health", undefined)).status).toBe(401);
  });

  it("POST cancel without a body (and without a content-type, or with one and nothing after it) cancels", async () => {
    const { server, tokens } = servers.open!;
    const { host } = new URL(server.url);
    const spec = `workflow:\n  name: nap-${random()}\n  tasks:\n  - name: nap\n    image: alpine:3.18\n    command: ["sleep", "${sleepers.sleep(300)}"]\n`;
    const headers = [[], ["Content-Length: 0"], ["Content-Type: application/json", "Content-Length: 0"]];
    for (const extra of headers) {
      const submitted = await api(server.url, "POST", "/api/pool/default/workflow", tokens.alice, JSON.stringify({ spec }));
      const id = (submitted.json as { id: string }).id;
      const response = await raw(server.url, [
        `POST /api/workflow/${id}/cancel HTTP/1.1`,
        `Host: ${host}`,
        `Authorization: Bearer ${tokens.alice}`,
        ...extra,
      ]);
      expect(response.status, `${extra.join(", ") || "no body headers"}: ${response.text}`).toBe(202);
      expect(response.text).toContain('"force":false');
    }
    const doc = (await api(server.url, "GET", "/api/openapi.json", undefined)).json as {
      paths: Record<string, Record<string, { requestBody?: { required?: boolean } }>>;
    };
    expect(doc.paths["/api/workflow/{id}/cancel"]!.post!.requestBody!.required).toBe(false);
    expect(doc.paths["/api/pool/{pool}/workflow"]!.post!.requestBody!.required).toBe(true);
  });
});
