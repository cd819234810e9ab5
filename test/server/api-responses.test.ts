/**
 * The OpenAPI document tells the truth about responses: every route's
 * responses are produced by a real `troupe server` and checked against the
 * zod schemas the document is built from (strict objects: a field the server
 * sends but the document does not name fails too), and the document has a
 * response schema for each route and status. Also: submissions' priority and
 * labels, recorded, returned, filtered on, and kept by a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { RESPONSES, type ResponseSchemas, type RouteKey } from "../../src/server/api-responses.js";
import { TestHome, ensureBuilt, random, sleepMarkers, troupe } from "../run/helpers.js";
import { request, startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
let url: string;
let alice: string;
let bob: string;
const sleepers = sleepMarkers(8);

interface Response {
  status: number;
  type: string;
  body: unknown;
}

/** Every route and status whose real response was checked against its schema. */
const checked = new Set<string>();

/** Calls the API, checks the response against the schema documented for `route` and its status, returns it. */
async function call(route: RouteKey, target: string, token: string | undefined, body?: string, type = "application/json") {
  const headers = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": type } : {}) };
  const response = await request(url, route.split(" ")[0]!, target, headers, body);
  const { text, type: contentType } = response;
  const documented = (RESPONSES[route] as ResponseSchemas)[response.status];
  expect(documented, `${route} answered ${response.status} (${text.slice(0, 200)}), which its schema does not list`).toBeDefined();
  let parsed: unknown = text;
  if (!(documented instanceof z.ZodType)) expect(contentType.startsWith(documented!.mediaType), contentType).toBe(true);
  else {
    expect(contentType).toMatch(/^application\/json/);
    parsed = JSON.parse(text);
    const result = documented.safeParse(parsed);
    expect(result.error?.issues ?? [], `${route} ${response.status}: ${text.slice(0, 500)}`).toEqual([]);
  }
  checked.add(`${route} ${response.status}`);
  return { status: response.status, type: contentType, body: parsed } as Response;
}

const json = (value: unknown) => JSON.stringify(value);

/** A path parameter that is no valid URL component (400), and one longer than any id (414). */
async function badPaths(route: RouteKey, target: (param: string) => string, body?: string): Promise<void> {
  expect((await call(route, target("%zz"), alice, body)).status).toBe(400);
  expect((await call(route, target("x".repeat(300)), alice, body)).status).toBe(414);
}
type Body = Record<string, unknown>;
type RunRecordBody = { groups: Array<{ name: string; tasks: Array<{ attempts?: Body[] }> }> };

async function token(name: string): Promise<string> {
  const result = await troupe(["server", "token", "create", name, "--home", serverHome], { home: home.home });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

/** Polls the record until its status matches. */
async function until(id: string, status: RegExp): Promise<Body> {
  for (let i = 0; i < 300; i++) {
    const record = (await call("GET /api/workflow/:id", `/api/workflow/${id}`, alice)).body as Body;
    if (status.test(String(record.status))) return record;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${id} never reached ${status}`);
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  [alice, bob] = [await token("alice"), await token("bob")];
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none", "--max-runs-per-user", "2"]);
  url = server.url;
}, 200_000);

afterAll(async () => {
  await server?.stop();
  sleepers.killAll();
  home?.remove();
});

const threeTasks = (name: string) => `workflow:
  name: ${name}
  labels: {team: from-spec, stage: dev}
  tasks:
  - {name: a, image: alpine:3.18, command: ["echo", "a"]}
  - {name: b, image: alpine:3.18, command: ["echo", "b"]}
  - {name: c, image: alpine:3.18, command: ["sh", "-c", "echo c; exit {{ code }}"]}
`;

describe("every route's responses match their documented schemas", () => {
  const name = `resp-${random()}`;
  let completed: string;
  let failed: string;

  it("health, submit (dry run, accepted, refused in every way)", async () => {
    expect((await call("GET /api/health", "/api/health", undefined)).status).toBe(200);
    const submit = "POST /api/pool/:pool/workflow";
    const spec = threeTasks(name);
    const dry = await call(submit, "/api/pool/default/workflow", alice, json({ spec, set: { code: "0" }, dry_run: true }));
    expect(dry).toMatchObject({ status: 200, body: { valid: true, name, groups: 3, tasks: 3 } });
    // The plan, for the web UI's graph: three tasks, each a group of its own (TASK-group), none waiting for another.
    expect((dry.body as { plan: { groups: Body[] } }).plan.groups).toEqual(
      ["a", "b", "c"].map((t) => ({ name: `${t}-group`, tasks: [{ name: t, lead: true }], upstream: [] })),
    );
    const ok = await call(
      submit,
      "/api/pool/default/workflow",
      alice,
      json({ spec, set: { code: "0" }, priority: "HIGH", labels: { team: "vision", "example.com/ticket": "T-12" } }),
    );
    expect(ok).toMatchObject({ status: 201, body: { name } });
    completed = (ok.body as Body).id as string;
    await until(completed, /^COMPLETED$/);
    const bad = await call(submit, "/api/pool/default/workflow", alice, json({ spec, set: { code: "1" } }));
    expect(bad.status).toBe(201);
    failed = (bad.body as Body).id as string;
    await until(failed, /^FAILED/);

    const invalid = await call(submit, "/api/pool/default/workflow", alice, json({ spec: "workflow:\n  name: x\n  tasks: 5\n" }));
    expect(invalid.status).toBe(400);
    expect((invalid.body as Body).diagnostics).toEqual(expect.arrayContaining([expect.objectContaining({ path: "workflow.tasks" })]));
    expect((await call(submit, "/api/pool/default/workflow", alice, json({ spec: 5 }))).status).toBe(400);
    expect((await call(submit, "/api/pool/nope/workflow", alice, json({ spec }))).status).toBe(404);
    const privileged = "workflow:\n  name: p\n  tasks:\n  - {name: p, image: alpine, privileged: true, command: [id]}\n";
    const refused = await call(submit, "/api/pool/default/workflow", alice, json({ spec: privileged }));
    expect(refused).toMatchObject({
      status: 403,
      body: { error: expect.stringMatching(/privileged: true, which the pool default does not allow/) },
    });
    expect((await call(submit, `/api/pool/${"p".repeat(200)}/workflow`, alice, json({ spec }))).status).toBe(400);
    await badPaths(submit, (pool) => `/api/pool/${pool}/workflow`, json({ spec }));
    expect((await call(submit, "/api/pool/default/workflow", undefined, json({ spec }))).status).toBe(401);
    expect((await call(submit, "/api/pool/default/workflow", alice, spec, "application/xml")).status).toBe(415);
    expect((await call(submit, "/api/pool/default/workflow", alice, json({ spec: "a".repeat(12 * 1024 * 1024) }))).status).toBe(413);
  });

  it("query (running and ended, twice: the second from the cache of ended records), list, spec, events, logs", async () => {
    const record = (await call("GET /api/workflow/:id", `/api/workflow/${completed}`, alice)).body as Body;
    expect(record).toMatchObject({
      status: "COMPLETED",
      priority: "HIGH",
      labels: { team: "vision", "example.com/ticket": "T-12", stage: "dev" },
    });
    expect((await call("GET /api/workflow/:id", `/api/workflow/${completed}`, bob)).body).toEqual(record);
    expect((await call("GET /api/workflow/:id", "/api/workflow/none", alice)).status).toBe(404);
    await badPaths("GET /api/workflow/:id", (id) => `/api/workflow/${id}`);
    expect((await call("GET /api/workflow/:id", `/api/workflow/${completed}`, undefined)).status).toBe(401);

    const list = await call("GET /api/workflow", `/api/workflow?name=${name}`, alice);
    expect((list.body as { workflows: Body[] }).workflows.map((w) => w.id)).toEqual([failed, completed]);
    expect((await call("GET /api/workflow", "/api/workflow?label=a%20b", alice)).status).toBe(400);
    expect((await call("GET /api/workflow", "/api/workflow?priority=URGENT", alice)).status).toBe(400);
    expect((await call("GET /api/workflow", "/api/workflow", undefined)).status).toBe(401);

    const spec = await call("GET /api/workflow/:id/spec", `/api/workflow/${completed}/spec?template=true`, alice);
    expect(spec.body).toBe(threeTasks(name));
    const rendered = await call("GET /api/workflow/:id/spec", `/api/workflow/${completed}/spec`, alice);
    expect(rendered.body).toMatch(/- echo c; exit 0\n/);
    expect((await call("GET /api/workflow/:id/spec", `/api/workflow/${completed}/spec?template=maybe`, alice)).status).toBe(400);
    expect((await call("GET /api/workflow/:id/spec", "/api/workflow/none/spec", alice)).status).toBe(404);
    await badPaths("GET /api/workflow/:id/spec", (id) => `/api/workflow/${id}/spec`);
    expect((await call("GET /api/workflow/:id/spec", `/api/workflow/${completed}/spec`, undefined)).status).toBe(401);

    const events = (await call("GET /api/workflow/:id/events", `/api/workflow/${completed}/events`, alice)).body as { events: Body[] };
    expect(events.events.at(-1)).toMatchObject({ group: null, to: "COMPLETED" });
    expect((await call("GET /api/workflow/:id/events", "/api/workflow/none/events", alice)).status).toBe(404);
    await badPaths("GET /api/workflow/:id/events", (id) => `/api/workflow/${id}/events`);
    expect((await call("GET /api/workflow/:id/events", `/api/workflow/${completed}/events`, undefined)).status).toBe(401);

    // The pools and their load; after the run above, nothing held.
    const pools = (await call("GET /api/pool", "/api/pool", alice)).body as { pools: Body[] };
    expect(pools.pools.map((p) => p.name)).toContain("default");
    expect(pools.pools[0]).toMatchObject({
      used: { cpus: 0, gpus: 0, memory_bytes: 0, tasks: 0 },
      running_workflows: 0,
      queued_workflows: 0,
    });
    expect((await call("GET /api/pool", "/api/pool", undefined)).status).toBe(401);

    const logs = "GET /api/workflow/:id/logs";
    expect((await call(logs, `/api/workflow/${completed}/logs?task=c`, alice)).body).toBe("c\n");
    expect((await call(logs, `/api/workflow/${completed}/logs?task=c&follow=true`, alice)).body).toBe("c\n");
    expect((await call(logs, `/api/workflow/${completed}/logs`, alice)).status).toBe(400);
    expect((await call(logs, `/api/workflow/${completed}/logs?task=nope`, alice)).status).toBe(404);
    await badPaths(logs, (id) => `/api/workflow/${id}/logs`);
    expect((await call(logs, `/api/workflow/${completed}/logs?task=c`, undefined)).status).toBe(401);

    const verbose = (await call("GET /api/workflow/:id", `/api/workflow/${failed}?verbose=true`, alice)).body as RunRecordBody;
    expect(verbose.groups.find((g) => g.name === "c-group")!.tasks[0]!.attempts).toEqual([
      expect.objectContaining({ retry_id: 0, status: "FAILED", exit_code: 1 }),
    ]);
    expect((await call("GET /api/workflow/:id", `/api/workflow/${failed}?verbose=yes`, alice)).status).toBe(400);
  });

  it("stream, error logs, tags", async () => {
    const stream = "GET /api/workflow/:id/stream";
    const lines = (text: unknown) =>
      String(text)
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as Body);
    const all = lines((await call(stream, `/api/workflow/${failed}/stream?follow=true`, alice)).body);
    expect(all.at(-1)).toEqual({ type: "end", status: "FAILED" });
    expect(all).toContainEqual({ type: "output", task: "c", retry_id: 0, data: "c\n" });
    expect(all).toContainEqual(expect.objectContaining({ type: "event", task: "c", to: "FAILED" }));
    const output = lines((await call(stream, `/api/workflow/${failed}/stream?only=output&task=a`, alice)).body);
    expect(output).toEqual([
      { type: "output", task: "a", retry_id: 0, data: "a\n" },
      { type: "end", status: "FAILED" },
    ]);
    expect((await call(stream, `/api/workflow/${failed}/stream?only=everything`, alice)).status).toBe(400);
    expect((await call(stream, `/api/workflow/${failed}/stream?task=nope`, alice)).status).toBe(404);
    expect((await call(stream, "/api/workflow/none/stream", alice)).status).toBe(404);
    await badPaths(stream, (id) => `/api/workflow/${id}/stream`);
    expect((await call(stream, `/api/workflow/${failed}/stream`, undefined)).status).toBe(401);

    // The changes stream lasts while its client stays: its status and media type as documented, then it is left.
    const changes = "GET /api/workflow/changes";
    const leave = new AbortController();
    const opened = await fetch(`${url}/api/workflow/changes`, { headers: { authorization: `Bearer ${alice}` }, signal: leave.signal });
    expect(opened.status).toBe(200);
    expect(opened.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    expect((RESPONSES[changes] as ResponseSchemas)[200]).toMatchObject({ mediaType: "application/x-ndjson" });
    leave.abort();
    checked.add(`${changes} 200`);
    expect((await call(changes, "/api/workflow/changes", undefined)).status).toBe(401);

    const errorLogs = "GET /api/workflow/:id/error_logs";
    expect((await call(errorLogs, `/api/workflow/${failed}/error_logs`, alice)).body).toBe("--- c retry 0: FAILED (exit code 1) ---\nc\n");
    expect((await call(errorLogs, `/api/workflow/${failed}/error_logs?task=a`, alice)).body).toBe("");
    expect((await call(errorLogs, `/api/workflow/${failed}/error_logs?task=nope`, alice)).status).toBe(404);
    expect((await call(errorLogs, `/api/workflow/${failed}/error_logs?n=0`, alice)).status).toBe(400);
    expect((await call(errorLogs, "/api/workflow/none/error_logs", alice)).status).toBe(404);
    await badPaths(errorLogs, (id) => `/api/workflow/${id}/error_logs`);
    expect((await call(errorLogs, `/api/workflow/${failed}/error_logs`, undefined)).status).toBe(401);

    const tag = "POST /api/workflow/:id/tag";
    expect(await call(tag, `/api/workflow/${failed}/tag`, alice, json({ add: ["baseline", "paper"] }))).toMatchObject({
      status: 200,
      body: { id: failed, tags: ["baseline", "paper"] },
    });
    expect((await call(tag, `/api/workflow/${failed}/tag`, alice, json({ remove: ["paper"] }))).body).toEqual({
      id: failed,
      tags: ["baseline"],
    });
    expect((await call("GET /api/workflow/:id", `/api/workflow/${failed}`, alice)).body).toMatchObject({ tags: ["baseline"] });
    expect((await call(tag, `/api/workflow/${failed}/tag`, bob, json({ add: ["mine"] }))).status).toBe(403);
    expect((await call(tag, `/api/workflow/${failed}/tag`, alice, json({}))).status).toBe(400);
    expect((await call(tag, `/api/workflow/${failed}/tag`, alice, json({ add: ["not a tag"] }))).status).toBe(400);
    expect((await call(tag, `/api/workflow/${failed}/tag`, alice, "add", "application/xml")).status).toBe(415);
    expect((await call(tag, `/api/workflow/${failed}/tag`, alice, json({ add: ["a".repeat(12 * 1024 * 1024)] }))).status).toBe(413);
    expect((await call(tag, "/api/workflow/none/tag", alice, json({ add: ["x"] }))).status).toBe(404);
    await badPaths(tag, (id) => `/api/workflow/${id}/tag`, json({ add: ["x"] }));
    expect((await call(tag, `/api/workflow/${failed}/tag`, undefined, json({ add: ["x"] }))).status).toBe(401);
    expect((await call("GET /api/tag", "/api/tag", bob)).body).toEqual({ tags: expect.arrayContaining(["baseline"]) });
    expect((await call("GET /api/tag", "/api/tag", undefined)).status).toBe(401);
  });

  it("cancel and restart, with a user at the server's limit of running workflows (429)", async () => {
    const sleeper = () =>
      `workflow:\n  name: sleeper-${random()}\n  tasks:\n  - {name: nap, image: alpine:3.18, command: ["sleep", "${sleepers.sleep(1000)}"]}\n`;
    const submit = "POST /api/pool/:pool/workflow";
    const [running, other] = [
      ((await call(submit, "/api/pool/default/workflow", alice, json({ spec: sleeper() }))).body as Body).id as string,
      ((await call(submit, "/api/pool/default/workflow", alice, json({ spec: sleeper() }))).body as Body).id as string,
    ];
    await until(running, /^RUNNING$/);
    expect((await call(submit, "/api/pool/default/workflow", alice, json({ spec: sleeper() }))).status).toBe(429);
    expect((await call("POST /api/workflow/:id/restart", `/api/workflow/${failed}/restart`, alice)).status).toBe(429);

    const cancel = "POST /api/workflow/:id/cancel";
    expect((await call(cancel, `/api/workflow/${running}/cancel`, bob, json({})))?.status).toBe(403);
    expect((await call(cancel, `/api/workflow/${running}/cancel`, alice, json({ force: "yes" }))).status).toBe(400);
    expect((await call(cancel, `/api/workflow/${running}/cancel`, alice, "force", "application/xml")).status).toBe(415);
    expect((await call(cancel, `/api/workflow/${running}/cancel`, alice, json({ force: "a".repeat(12 * 1024 * 1024) }))).status).toBe(413);
    expect((await call(cancel, "/api/workflow/none/cancel", alice, json({}))).status).toBe(404);
    await badPaths(cancel, (id) => `/api/workflow/${id}/cancel`, json({}));
    expect((await call(cancel, `/api/workflow/${running}/cancel`, undefined, json({}))).status).toBe(401);
    expect(await call(cancel, `/api/workflow/${running}/cancel`, alice, json({ force: true }))).toMatchObject({
      status: 202,
      body: { id: running, canceling: true, force: true },
    });
    await call(cancel, `/api/workflow/${other}/cancel`, alice, json({ force: true }));
    await until(running, /^FAILED_CANCELED$/);
    await until(other, /^FAILED_CANCELED$/);
    expect((await call(cancel, `/api/workflow/${running}/cancel`, alice, json({}))).status).toBe(409);

    const restart = "POST /api/workflow/:id/restart";
    expect((await call(restart, `/api/workflow/${failed}/restart`, bob)).status).toBe(403);
    expect((await call(restart, `/api/workflow/${completed}/restart`, alice)).status).toBe(409);
    expect((await call(restart, "/api/workflow/none/restart", alice)).status).toBe(404);
    await badPaths(restart, (id) => `/api/workflow/${id}/restart`);
    expect((await call(restart, `/api/workflow/${failed}/restart`, undefined)).status).toBe(401);
    const again = await call(restart, `/api/workflow/${failed}/restart`, alice);
    expect(again).toMatchObject({ status: 201, body: { restarted: failed } });
    await until((again.body as Body).id as string, /^FAILED/);
  });

  it("credentials: set, list and delete, each user's own, values never answered", async () => {
    const set = "POST /api/credentials/:name";
    const secret = `resp-secret-${random()}`;
    const generic = json({ generic_credential: { credential: { token: secret } } });
    expect(await call(set, "/api/credentials/api-key", alice, generic)).toMatchObject({
      status: 200,
      body: { cred_name: "api-key", cred_type: "GENERIC", keys: ["token"], profile: null },
    });
    const data = json({ data_credential: { endpoint: "s3://bucket/", access_key_id: "AKIA-RESP", access_key: secret } });
    expect((await call(set, "/api/credentials/store", alice, data)).body).toMatchObject({ cred_type: "DATA", profile: "s3://bucket" });
    expect((await call(set, "/api/credentials/store", alice, json({ data_credential: { endpoint: "s3://b" } }))).body).toMatchObject({
      code: "E_CREDENTIAL_PAYLOAD",
    });
    expect((await call(set, "/api/credentials/-bad", alice, generic)).body).toMatchObject({ code: "E_CREDENTIAL_NAME" });
    expect(
      (await call(set, "/api/credentials/x", alice, json({ generic_credential: { credential: {} }, data_credential: {} }))).status,
    ).toBe(400);
    await badPaths(set, (name) => `/api/credentials/${name}`, generic);
    expect((await call(set, "/api/credentials/x", undefined, generic)).status).toBe(401);
    expect((await call(set, "/api/credentials/x", alice, "token=x", "application/xml")).status).toBe(415);
    const huge = json({ generic_credential: { credential: { token: "a".repeat(12 * 1024 * 1024) } } });
    expect((await call(set, "/api/credentials/x", alice, huge)).status).toBe(413);

    const list = "GET /api/credentials";
    const listed = await call(list, "/api/credentials", alice);
    expect((listed.body as { credentials: Body[] }).credentials.map((c) => c.cred_name)).toEqual(["api-key", "store"]);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect((await call(list, "/api/credentials", bob)).body).toEqual({ credentials: [] });
    expect((await call(list, "/api/credentials", undefined)).status).toBe(401);

    const del = "DELETE /api/credentials/:name";
    expect((await call(del, "/api/credentials/api-key", bob)).status).toBe(404);
    expect(await call(del, "/api/credentials/api-key", alice)).toMatchObject({
      status: 200,
      body: { cred_name: "api-key", deleted: true },
    });
    expect((await call(del, "/api/credentials/api-key", alice)).status).toBe(404);
    await badPaths(del, (name) => `/api/credentials/${name}`);
    expect((await call(del, "/api/credentials/-bad", alice)).status).toBe(400);
    expect((await call(del, "/api/credentials/store", undefined)).status).toBe(401);
  });

  it("the document has a response schema for every route and status, and every one was seen except those no test can cause", async () => {
    const response = await fetch(`${url}/api/openapi.json`);
    const doc = (await response.json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: Body }> }> }>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([route, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${route.replace(/\{(\w+)\}/g, ":$1")}`),
    );
    expect(documented.sort()).toEqual(Object.keys(RESPONSES).sort());
    for (const [key, responses] of Object.entries(RESPONSES)) {
      const [method, route] = key.split(" ") as [string, string];
      const operation = doc.paths[route.replace(/:(\w+)/g, "{$1}")]![method.toLowerCase()]!;
      expect(Object.keys(operation.responses).sort(), key).toEqual(Object.keys(responses).sort());
      for (const [status, expected] of Object.entries(responses)) {
        const content = operation.responses[status]!.content!;
        if ("mediaType" in expected) expect(content[expected.mediaType]?.schema, `${key} ${status}`).toEqual({ type: "string" });
        else {
          const schema = content["application/json"]?.schema;
          expect(schema?.type, `${key} ${status}`).toBe("object");
          expect(Object.keys(schema?.properties as object).sort(), `${key} ${status}`).toEqual(Object.keys(expected.shape).sort());
        }
      }
    }
    // 500 (an internal error) and 503 (a server shutting down) are not caused here.
    const uncaused = Object.entries(RESPONSES)
      .flatMap(([key, responses]) => Object.keys(responses).map((status) => `${key} ${status}`))
      .filter((k) => !checked.has(k) && !/ (500|503)$/.test(k));
    expect(uncaused).toEqual([]);
  });
});

describe("priority and labels", () => {
  it("are recorded, returned, filtered on by the API and the client, and kept by a restart", async () => {
    const name = `labelled-${random()}`;
    const file = home.spec("labelled", threeTasks(name));
    const env = { TROUPE_SERVER: url, TROUPE_TOKEN: bob, XDG_CONFIG_HOME: home.outsideTmp() };
    const client = (args: string[]) => troupe(args, { home: home.home, env, timeoutMs: 30_000 });
    const low = await client([
      "workflow",
      "submit",
      file,
      "--set",
      "code=3",
      "--priority",
      "LOW",
      "--label",
      "team=robotics",
      "--label",
      "run=1",
      "--wait",
      "--output",
      "json",
    ]);
    expect(low.code, low.stderr).toBe(1);
    const lowRecord = JSON.parse(low.stdout) as Body;
    expect(lowRecord).toMatchObject({ priority: "LOW", labels: { team: "robotics", run: "1", stage: "dev" } });
    const normal = await client(["workflow", "submit", file, "--set", "code=0", "--wait", "--output", "json"]);
    expect(normal.code, normal.stderr).toBe(0);
    expect(JSON.parse(normal.stdout)).toMatchObject({ priority: "NORMAL", labels: { team: "from-spec", stage: "dev" } });

    const ids = async (query: string) =>
      (
        (await call("GET /api/workflow", `/api/workflow?name=${name}&all_users=true&${query}`, alice)).body as { workflows: Body[] }
      ).workflows.map((w) => w.id);
    const [lowId, normalId] = [lowRecord.id, (JSON.parse(normal.stdout) as Body).id];
    expect(await ids("priority=LOW")).toEqual([lowId]);
    expect(await ids("priority=HIGH")).toEqual([]);
    expect(await ids("label=team=robotics")).toEqual([lowId]);
    expect(await ids("label=stage=dev")).toEqual([normalId, lowId]);
    expect(await ids("label=run")).toEqual([lowId]);
    expect(await ids("label=stage=dev&label=run=1")).toEqual([lowId]);
    expect(await ids("label=stage=dev&label=run=2")).toEqual([]);

    const listed = await client(["workflow", "list", "--name", name, "--label", "team=robotics", "--priority", "LOW", "--output", "json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: lowId, priority: "LOW", labels: lowRecord.labels })]);
    const table = await client(["workflow", "list", "--name", name, "--label", "run=1"]);
    const [header, row, more] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^ID +STATUS +SUBMITTED +USER +POOL +PRIORITY +TASKS +LABELS +TAGS$/);
    expect(row).toMatch(new RegExp(`^${lowId} +FAILED +\\S+ +bob +default +LOW +3 tasks +.*team=robotics`));
    expect(header!.indexOf("PRIORITY")).toBe(row!.indexOf("LOW"));
    expect(more).toBeUndefined();

    const restarted = await client(["workflow", "restart", String(lowId), "--wait", "--output", "json"]);
    expect(JSON.parse(restarted.stdout)).toMatchObject({ priority: "LOW", labels: lowRecord.labels });
  });

  it("bad labels and priorities are refused with the reason (400 from the API, exit 2 from the client)", async () => {
    const spec = threeTasks(`bad-${random()}`);
    const submit = (extra: Body) => call("POST /api/pool/:pool/workflow", "/api/pool/default/workflow", alice, json({ spec, ...extra }));
    const cases: Array<[Body, RegExp]> = [
      [{ labels: { "bad key": "x" } }, /body\.labels\.bad key: label key `bad key` must be at most 63 characters/],
      [{ labels: { ["k".repeat(64)]: "x" } }, /label key `k{64}` must be at most 63/],
      [{ labels: { "Example.com/x": "x" } }, /invalid prefix `Example.com`/],
      [{ labels: { team: "a/b" } }, /label value `a\/b` must be empty or/],
      [{ labels: { team: 5 } }, /body\.labels\.team/],
      [{ labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, /17 labels given; at most 16/],
      [{ priority: "URGENT" }, /body\.priority/],
    ];
    for (const [extra, message] of cases) {
      const response = await submit(extra);
      expect(response.status, json(extra)).toBe(400);
      expect((response.body as Body).error).toMatch(message);
    }
    expect((await submit({ labels: { "example.com/team": "", a: "b" }, set: { code: "0" }, dry_run: true })).status).toBe(200);
    const file = home.spec("bad-label", spec);
    const env = { TROUPE_SERVER: url, TROUPE_TOKEN: alice, XDG_CONFIG_HOME: home.outsideTmp() };
    const refused = await troupe(["workflow", "submit", file, "--set", "code=0", "--label", "a b=c"], { home: home.home, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/label key `a b`/);
    // `workflow validate` takes what submit takes, and the server checks the labels too.
    const validateRefused = await troupe(["workflow", "validate", file, "--set", "code=0", "--label", "a b=c"], { home: home.home, env });
    expect(validateRefused.code).toBe(2);
    expect(validateRefused.stderr).toMatch(/label key `a b`/);
    const validated = await troupe(["workflow", "validate", file, "--set", "code=0", "--label", "team=robots", "--priority", "LOW"], {
      home: home.home,
      env,
    });
    expect(validated.stdout + validated.stderr).toMatch(/valid/);
    expect(validated.code).toBe(0);
    const listRefused = await troupe(["workflow", "list", "--label", "a=b c"], { home: home.home, env });
    expect(listRefused.code).toBe(2);
    expect(listRefused.stderr).toMatch(/label selector `a=b c`: `b c` /);
  });
});
