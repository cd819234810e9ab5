/**
 * Acceptance: a real `troupe server` process on loopback, driven by the real
 * client (`troupe workflow ...`) and by raw HTTP for what a client would
 * never send: submit/query/list/events/spec/cancel, tokens (401/403), bad
 * input of every kind answered with a 4xx while the server keeps serving.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, TestHome, ensureBuilt, random, sleepMarkers, troupe, type RunRecord } from "../run/helpers.js";
import { request, startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
let url: string;
let alice: string;
let bob: string;
let admin: string;
let carol: string;
const sleepers = sleepMarkers(2);

/** `troupe ...` as a client of the test server with `token`. */
function client(args: string[], token: string, timeoutMs = 20_000) {
  return troupe(args, { home: home.home, env: { TROUPE_SERVER: url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() }, timeoutMs });
}

async function api(method: string, route: string, token: string | undefined, body?: string, type = "application/json") {
  const response = await fetch(url + route, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": type } : {}) },
    body,
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: response.status, json };
}

async function token(name: string, admin = false): Promise<string> {
  const result = await troupe(["server", "token", "create", name, "--home", serverHome, ...(admin ? ["--admin"] : [])], {
    home: home.home,
  });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  [alice, bob, admin, carol] = [await token("alice"), await token("bob"), await token("root", true), await token("carol")];
  const args = ["--runtime", "host", "--isolation", "none", "--max-runs-per-user", "2"];
  server = await startServer(serverHome, args);
  url = server.url;
}, 200_000);

afterAll(async () => {
  await server?.stop();
  sleepers.killAll();
  home?.remove();
});

const sleeper = (seconds: number) => `workflow:
  name: sleeper-${random()}
  tasks:
  - name: nap
    image: alpine:3.18
    command: ["sleep", "${sleepers.sleep(seconds)}"]
`;

describe("troupe server with the troupe client", () => {
  it("health needs no token; the OpenAPI document describes the routes", async () => {
    expect(await api("GET", "/api/health", undefined)).toEqual({ status: 200, json: { status: "OK" } });
    const doc = await api("GET", "/api/openapi.json", undefined);
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.json.paths as object)).toEqual(
      expect.arrayContaining(["/api/pool/{pool}/workflow", "/api/workflow", "/api/workflow/{id}", "/api/workflow/{id}/cancel"]),
    );
  });

  it("submit --wait follows a workflow to its end and prints the record, with pool and user; list, query, events and spec agree", async () => {
    const file = path.join(ROOT, "examples", "parallel_tasks.yaml");
    const run = await client(["workflow", "submit", file, "--wait", "--output", "json"], alice);
    expect(run.code, run.stderr).toBe(0);
    const record = JSON.parse(run.stdout) as RunRecord & { pool: string; user: string };
    expect(record).toMatchObject({ status: "COMPLETED", pool: "default", user: "alice" });
    expect(record.groups.flatMap((g) => g.tasks.map((t) => t.status))).toEqual(["COMPLETED", "COMPLETED", "COMPLETED"]);

    const query = await client(["workflow", "query", record.id, "--output", "json"], bob);
    expect(JSON.parse(query.stdout)).toEqual(record);
    const list = await client(["workflow", "list", "--user", "alice", "--output", "json"], bob);
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((w) => w.id)).toContain(record.id);
    const events = await client(["workflow", "events", record.id, "--output", "json"], alice);
    const transitions = JSON.parse(events.stdout) as Array<{ to: string; task: string | null }>;
    expect(transitions.filter((t) => t.task === "task-a").map((t) => t.to)).toEqual(
      expect.arrayContaining(["WAITING", "SCHEDULING", "INITIALIZING", "RUNNING", "COMPLETED"]),
    );
    const spec = await client(["workflow", "spec", record.id, "--template"], alice);
    expect(spec.stdout).toBe(fs.readFileSync(file, "utf8"));
  });

  it("an invalid workflow is refused with the spec's diagnostics (exit 2); --dry-run validates without running", async () => {
    const bad = home.spec("bad", "workflow:\n  name: bad\n  tasks:\n  - name: x\n    image: alpine\n    comand: [true]\n");
    const refused = await client(["workflow", "submit", bad], alice);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/comand/);
    const dry = await client(["workflow", "submit", path.join(ROOT, "examples", "parallel_tasks.yaml"), "--dry-run"], alice);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/valid/);
  });

  it("only the submitter or an admin cancels: 403 for another user; cancel ends the run FAILED_CANCELED (exit 130 for --wait)", async () => {
    const file = home.spec("sleeper", sleeper(1000));
    const waiting = client(["workflow", "submit", file, "--wait", "--output", "json"], alice, 30_000);
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      const listed = await api("GET", "/api/workflow?user=alice&status=RUNNING", alice);
      id = (listed.json.workflows as Array<{ id: string; name: string }>).find((w) => w.name.startsWith("sleeper-"))?.id;
      if (!id) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(id).toBeDefined();
    const forbidden = await client(["workflow", "cancel", id!], bob);
    expect(forbidden.code).toBe(2);
    expect(forbidden.stderr).toMatch(/only they or an admin/);
    const canceled = await client(["workflow", "cancel", id!], admin);
    expect(canceled.code, canceled.stderr).toBe(0);
    const result = await waiting;
    expect(result.code).toBe(130);
    expect((JSON.parse(result.stdout) as RunRecord).status).toBe("FAILED_CANCELED");
  });
});

describe("submissions", () => {
  it("localpath files are read by the client and travel inlined; `workflow validate` checks on the server", async () => {
    const dir = home.outsideTmp();
    fs.writeFileSync(path.join(dir, "banner.txt"), "from the client's disk\n");
    const file = path.join(dir, "local.yaml");
    fs.writeFileSync(
      file,
      `workflow:
  name: local-{{ flavour }}
  tasks:
  - name: reader
    image: alpine:3.18
    files:
    - path: /tmp/banner.txt
      localpath: banner.txt
    command: ["cat", "/tmp/banner.txt"]
`,
    );
    const validated = await client(["workflow", "validate", file, "--set", "flavour=x"], alice);
    expect(validated.code, validated.stderr).toBe(0);
    const run = await client(["workflow", "submit", file, "--set", "flavour=mint", "--wait", "--output", "json"], alice);
    expect(run.code, run.stderr).toBe(0);
    const record = JSON.parse(run.stdout) as RunRecord;
    expect(record.name).toBe("local-mint");
    const log = await client(["workflow", "logs", record.id], alice);
    expect(log.stdout).toBe("from the client's disk\n");
  });

  it("a user over the server's limit of running workflows gets 429; others are not held up", async () => {
    const file = home.spec("sleeper-limit", sleeper(1000));
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const submitted = await client(["workflow", "submit", file, "--output", "json"], carol);
      expect(submitted.code, submitted.stderr).toBe(0);
      ids.push((JSON.parse(submitted.stdout) as { id: string }).id);
    }
    const third = await api("POST", "/api/pool/default/workflow", carol, JSON.stringify({ spec: fs.readFileSync(file, "utf8") }));
    expect(third.status).toBe(429);
    expect(String(third.json.error)).toMatch(/carol has 2 workflows running/);
    const others = await api(
      "POST",
      "/api/pool/default/workflow",
      bob,
      JSON.stringify({ spec: fs.readFileSync(file, "utf8"), dry_run: true }),
    );
    expect(others.status).toBe(200);
    for (const id of ids) expect((await client(["workflow", "cancel", id, "--force"], carol)).code).toBe(0);
  });

  it("submissions sent all at once are held to the limit too (those being planned count)", async () => {
    const spec = fs.readFileSync(home.spec("sleeper-burst", sleeper(1000)), "utf8");
    // carol's earlier runs may still be ending: wait until she may submit again.
    for (let i = 0; i < 100; i++) {
      const probe = await api("POST", "/api/pool/default/workflow", carol, JSON.stringify({ spec, dry_run: true }));
      expect(probe.status).toBe(200);
      const list = await api("GET", "/api/workflow?user=carol&status=RUNNING", carol);
      if ((list.json.workflows as unknown[] | undefined)?.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => api("POST", "/api/pool/default/workflow", carol, JSON.stringify({ spec }))),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 201, 429, 429, 429, 429]);
    for (const answer of answers.filter((a) => a.status === 201))
      expect((await client(["workflow", "cancel", String(answer.json.id), "--force"], carol)).code).toBe(0);
  });
});

describe("restart", () => {
  it("runs only the groups that did not complete, reusing the outputs of those that did; only a failed workflow, only its submitter", async () => {
    const flags = home.outsideTmp();
    const file = home.spec(
      "two-steps",
      `workflow:
  name: steps-{{ tag }}
  groups:
  - name: make
    tasks:
    - name: maker
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "echo made-$$ > {{output}}/made.txt; echo making"]
  - name: use
    tasks:
    - name: user
      lead: true
      image: alpine:3.18
      inputs: [{task: maker}]
      command: ["sh", "-c", "[ -e ${flags}/ready ] || { echo not ready; exit 1; }; cat {{input:0}}/made.txt"]
`,
    );
    const first = await client(["workflow", "submit", file, "--set", "tag=a", "--wait", "--output", "json"], alice);
    expect(first.code, first.stderr).toBe(1);
    const failed = JSON.parse(first.stdout) as RunRecord;
    const made = fs.readFileSync(path.join(serverHome, "runs", failed.id, "outputs", "maker", "0", "made.txt"), "utf8");

    const notYours = await client(["workflow", "restart", failed.id], bob);
    expect(notYours.code).toBe(2);
    expect(notYours.stderr).toMatch(/only they or an admin/);

    // A restart that fails again: a restart of it still finds the maker's outputs, in the first run.
    const failedAgain = await client(["workflow", "restart", failed.id, "--wait", "--output", "json"], alice);
    expect(failedAgain.code, failedAgain.stderr).toBe(1);
    const second = JSON.parse(failedAgain.stdout) as RunRecord;
    fs.writeFileSync(path.join(flags, "ready"), "");
    const again = await client(["workflow", "restart", second.id, "--wait", "--output", "json"], alice);
    expect(again.code, again.stderr).toBe(0);
    const record = JSON.parse(again.stdout) as RunRecord;
    expect(record.id).not.toBe(failed.id);
    expect(record.name).toBe("steps-a");
    expect(record.groups.map((g) => [g.name, g.status])).toEqual([
      ["make", "COMPLETED"],
      ["use", "COMPLETED"],
    ]);
    // Where the taken-over group and its task ran, as data: the first run (through the second, which took it over too).
    const served = (await api("GET", `/api/workflow/${record.id}`, alice)).json as unknown as RunRecord;
    expect(served.groups.map((g) => [g.name, g.reused_from, g.tasks[0]!.reused_from])).toEqual([
      ["make", failed.id, failed.id],
      ["use", undefined, undefined],
    ]);
    expect(record.groups[0]).toMatchObject({ reused_from: failed.id });
    // The maker did not run again (no log in the new run); the user read the first run's output.
    expect(fs.existsSync(path.join(serverHome, "runs", record.id, "logs", "maker.0.log"))).toBe(false);
    expect((await client(["workflow", "logs", record.id, "--task", "user"], alice)).stdout).toBe(made);
    const events = JSON.parse((await client(["workflow", "events", record.id, "--output", "json"], alice)).stdout) as Array<{
      task: string | null;
      reason: string;
    }>;
    expect(events.some((e) => e.task === "maker" && /completed in run/.test(e.reason))).toBe(true);

    const completed = await api("POST", `/api/workflow/${record.id}/restart`, alice);
    expect(completed.status).toBe(409);
    expect(String(completed.json.error)).toMatch(/only a failed workflow/);
  });
});

describe("logs", () => {
  it("follow streams a task's output as it is written, byte for byte, and ends when the task ends; -n keeps the last lines", async () => {
    // 3 MB of numbered lines, written over about a second, then a last line.
    const file = home.spec(
      "chatty",
      `workflow:
  name: chatty-${random()}
  tasks:
  - name: talker
    image: alpine:3.18
    command: ["sh", "-c", "for i in 1 2 3 4 5; do seq $((i * 100000 - 99999)) $((i * 100000)); sleep 0.2; done; echo done"]
`,
    );
    const submitted = await client(["workflow", "submit", file, "--output", "json"], alice);
    const id = (JSON.parse(submitted.stdout) as { id: string }).id;
    const followed = await client(["workflow", "logs", id, "-f"], alice, 30_000);
    expect(followed.code, followed.stderr).toBe(0);
    const expected = Array.from({ length: 500_000 }, (_, i) => `${i + 1}\n`).join("") + "done\n";
    expect(followed.stdout.length).toBe(expected.length);
    expect(followed.stdout === expected).toBe(true);
    const lastTwo = await client(["workflow", "logs", id, "-n", "2"], bob);
    expect(lastTwo.stdout).toBe("500000\ndone\n");
    const missing = await client(["workflow", "logs", id, "--task", "nope"], alice);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no task nope/);
  });
});

describe("bad input gets a 4xx with a reason, and the server keeps serving", () => {
  it("no token or a wrong one: 401", async () => {
    expect((await api("GET", "/api/workflow", undefined)).status).toBe(401);
    expect((await api("GET", "/api/workflow", "trp_not-a-token")).status).toBe(401);
    expect((await api("GET", "/api/workflow", "Basic abc")).status).toBe(401);
    const client401 = await client(["workflow", "list"], "trp_wrong");
    expect(client401.code).toBe(2);
    expect(client401.stderr).toMatch(/token is not valid/);
  });

  it.each([
    ["malformed JSON", "POST", "/api/pool/default/workflow", "{bad", /not valid JSON/],
    ["a number for the spec", "POST", "/api/pool/default/workflow", '{"spec": 5}', /body\.spec/],
    ["an unknown field", "POST", "/api/pool/default/workflow", '{"spec": "x", "extra": 1}', /extra/],
    ["an array body", "POST", "/api/pool/default/workflow", "[]", /expected object/],
    ["no body", "POST", "/api/pool/default/workflow", undefined, /body/],
    ["a YAML that is no workflow", "POST", "/api/pool/default/workflow", '{"spec": "- a\\n- b"}', /not valid/],
    ["an unknown pool", "POST", "/api/pool/nope/workflow", '{"spec": "x"}', /no pool named nope/],
    ["a limit that is no number", "GET", "/api/workflow?limit=abc", undefined, /limit/],
    ["an unknown query parameter", "GET", "/api/workflow?bogus=1", undefined, /bogus/],
    ["an unknown workflow", "GET", "/api/workflow/no-such-run", undefined, /no workflow/],
    ["a path trick", "GET", "/api/workflow/..%2F..%2Fetc%2Fpasswd", undefined, /no workflow/],
    ["an unknown route", "GET", "/api/nothing", undefined, /no route/],
    ["canceling an unknown workflow", "POST", "/api/workflow/none/cancel", '{"force": true}', /no workflow/],
    ["logs of an unknown workflow", "GET", "/api/workflow/none/logs", undefined, /no workflow/],
    ["logs with a negative line count", "GET", "/api/workflow/none/logs?n=-1", undefined, /querystring\.n/],
    ["logs with follow=maybe", "GET", "/api/workflow/none/logs?follow=maybe", undefined, /follow/],
    ["a cancel body with the wrong type", "POST", "/api/workflow/none/cancel", '{"force": "yes"}', /force/],
  ])("%s", async (_what, method, route, body, message) => {
    const response = await api(method, route, alice, body);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(String(response.json.error)).toMatch(message);
    expect((await api("GET", "/api/health", undefined)).status).toBe(200);
  });

  it("a body over the limit: 413", async () => {
    const huge = JSON.stringify({ spec: "a".repeat(12 * 1024 * 1024) });
    // Not fetch: the server answers from the headers and closes before the body is sent (see request()).
    const response = await request(
      url,
      "POST",
      "/api/pool/default/workflow",
      { authorization: `Bearer ${alice}`, "content-type": "application/json" },
      huge,
    );
    expect(response.status).toBe(413);
    expect((await api("GET", "/api/health", undefined)).status).toBe(200);
  });
});
