/**
 * Every error the API answers comes from one place (server/error-reply.ts):
 * its status is errors/'s mapping of the error's kind, its body carries the
 * stable code. Over real HTTP on loopback, with a real store and the real run
 * manager (planning in this thread; no runtime: nothing here runs a task).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpStatusFor, TroupeError, type ErrorKind } from "../../src/errors/index.js";
import { ErrorResponse, InvalidResponse } from "../../src/server/api-responses.js";
import { buildApp } from "../../src/server/app.js";
import { errorReply } from "../../src/server/error-reply.js";
import { planSubmission } from "../../src/server/plan-submission.js";
import { RunManager, type Pool } from "../../src/server/run-manager.js";
import { RunStore } from "../../src/store/index.js";

let home: string;
let store: RunStore;
let manager: RunManager;
let app: FastifyInstance;
let url: string;
let alice: string;
let bob: string;
let completed: string;

const pool: Pool = {
  name: "default",
  capacity: { cpu: 2, gpu: 0, memoryBytes: 2 ** 30 },
  maxRetries: 0,
  maxParallel: 2,
  exitActions: [],
  privilegedAllowed: false,
  allowedMounts: [],
  defaultMounts: [],
  // No run starts in this test: a pool whose sessions cannot open.
  backend: {
    kind: "none",
    capabilities: {
      placement: "engine",
      sharedFileSystem: true,
      tasksOutliveTroupe: false,
      localLogs: true,
      mounts: false,
      dataPaths: "host",
    },
    describe: () => "no runtime in this test",
    notices: () => [],
    openSession: () => Promise.reject(new Error("no runtime in this test")),
    sweep: async () => [],
  },
};

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-errors-"));
  store = RunStore.open(home);
  alice = store.tokens.create("alice", false);
  bob = store.tokens.create("bob", false);
  // No run may start: a submission that passes every check is refused as over the limit (429).
  manager = new RunManager(store, new Map([["default", pool]]), { maxTasks: 10, maxRunsPerUser: 0 }, undefined, planSubmission);
  app = await buildApp({ store, manager });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
  completed = store.createRun({
    name: "done",
    specText: "workflow:\n  name: done\n  tasks:\n  - {name: t, image: alpine, command: [true]}\n",
    runtime: "test",
    submitTime: Date.now(),
    user: "alice",
    pool: "default",
    groups: [{ name: "t", tasks: [{ name: "t", lead: true }] }],
  });
  store.updateRun(completed, { status: "COMPLETED" });
});

afterAll(async () => {
  await app?.close();
  store?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

async function api(method: string, route: string, token: string | undefined, body?: unknown, type = "application/json") {
  const response = await fetch(url + route, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": type } : {}) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as { error: string; code: string; diagnostics?: unknown[] } };
}

const spec = (extra = "") => `workflow:\n  name: w\n  tasks:\n  - {name: t, image: alpine, command: [true]${extra}}\n`;

describe("the API's errors", () => {
  it("answer each kind with the status errors/ maps it to, and the error's stable code", async () => {
    const cases: Array<[string, Promise<Awaited<ReturnType<typeof api>>>, number, string]> = [
      ["no token", api("GET", "/api/workflow", undefined), 401, "E_UNAUTHORIZED"],
      ["a token that is not one", api("GET", "/api/workflow", "nope"), 401, "E_UNAUTHORIZED"],
      ["no such workflow", api("GET", "/api/workflow/nope-1", alice), 404, "E_NO_WORKFLOW"],
      ["no such route", api("GET", "/api/nothing", alice), 404, "E_NO_ROUTE"],
      ["no such pool", api("POST", "/api/pool/gpu/workflow", alice, { spec: spec() }), 404, "E_NO_POOL"],
      ["no such task", api("GET", `/api/workflow/${completed}/logs?task=x`, alice), 404, "E_NO_TASK"],
      ["no such attempt", api("GET", `/api/workflow/${completed}/logs?task=t&retry_id=3`, alice), 404, "E_NO_ATTEMPT"],
      ["an unknown status to list by (the store's refusal)", api("GET", "/api/workflow?status=NOPE", alice), 400, "E_UNKNOWN_STATUS"],
      ["a request its schema refuses", api("GET", "/api/workflow?limit=-1", alice), 400, "E_BAD_REQUEST"],
      ["JSON that is not", api("POST", "/api/pool/default/workflow", alice, "{"), 400, "E_BAD_REQUEST"],
      [
        "a body of a type not taken",
        api("POST", "/api/pool/default/workflow", alice, spec(), "application/xml"),
        415,
        "E_UNSUPPORTED_MEDIA_TYPE",
      ],
      ["another user's workflow to cancel", api("POST", `/api/workflow/${completed}/cancel`, bob), 403, "E_NOT_YOURS"],
      [
        "what the pool's policy refuses",
        api("POST", "/api/pool/default/workflow", alice, { spec: spec(", privileged: true"), dry_run: true }),
        403,
        "E_POOL_POLICY",
      ],
      ["a workflow that has ended, to cancel", api("POST", `/api/workflow/${completed}/cancel`, alice), 409, "E_NOT_RUNNING"],
      ["a workflow that completed, to restart", api("POST", `/api/workflow/${completed}/restart`, alice), 409, "E_NOT_RESTARTABLE"],
      ["more runs than the user may have", api("POST", "/api/pool/default/workflow", alice, { spec: spec() }), 429, "E_TOO_MANY_RUNS"],
    ];
    for (const [what, answer, status, code] of cases) {
      const { status: got, body } = await answer;
      expect([what, got, body.code], body.error).toEqual([what, status, code]);
      expect(ErrorResponse.safeParse(body).error?.issues ?? [], what).toEqual([]);
      expect(body.error.length, what).toBeGreaterThan(0);
    }
  });

  it("give an invalid spec's diagnostics with its code (400)", async () => {
    const { status, body } = await api("POST", "/api/pool/default/workflow", alice, {
      spec: "workflow:\n  name: x\n  tasks: 5\n",
      dry_run: true,
    });
    expect([status, body.code]).toEqual([400, "E_INVALID_SPEC"]);
    expect(body.diagnostics).toEqual(expect.arrayContaining([expect.objectContaining({ path: "workflow.tasks" })]));
    expect(InvalidResponse.safeParse(body).error?.issues ?? []).toEqual([]);
  });

  it("say the server takes no new workflows while it shuts down (503)", async () => {
    manager.stopTaking();
    const { status, body } = await api("POST", "/api/pool/default/workflow", alice, { spec: spec() });
    expect([status, body.code]).toEqual([503, "E_SHUTTING_DOWN"]);
  });
});

describe("errorReply", () => {
  it("follows errors/'s mapping for every kind, and tells nothing of an internal error", () => {
    const kinds: ErrorKind[] = ["usage", "invalid-spec", "unauthorized", "forbidden", "not-found", "conflict", "limit", "unavailable"];
    for (const kind of kinds) {
      const reply = errorReply(new TroupeError("E_SOME_CODE", "what went wrong", kind));
      expect([kind, reply.status, reply.body]).toEqual([
        kind,
        httpStatusFor(new TroupeError("E", "", kind)),
        { error: "what went wrong", code: "E_SOME_CODE" },
      ]);
    }
    expect(errorReply(new TroupeError("E_STORE_OPEN", "cannot open /secret/path", "system"))).toEqual({
      status: 500,
      body: { error: "internal error", code: "E_INTERNAL" },
      internal: true,
    });
    expect(errorReply(new Error("boom"))).toMatchObject({ status: 500, body: { code: "E_INTERNAL" } });
  });
});
