/**
 * Acceptance: a server killed with SIGKILL while a workflow runs. What can be
 * known is recorded: the next start settles the run as FAILED_SERVER_ERROR
 * with a reason (its tasks died with the killed server: the host runtime's
 * sandboxes die with their spawner), and nothing of it keeps running.
 * (Re-attaching tasks that outlive the server is not built yet.)
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, processesWith, random, sleepMarkers, troupe, waitFor } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let token: string;
const sleepers = sleepMarkers(4);
const started: ChildProcess[] = [];

async function start(): Promise<StartedServer> {
  const server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
  started.push(server.child);
  return server;
}

async function call(url: string, method: string, route: string, body?: unknown) {
  const response = await fetch(url + route, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  token = (await troupe(["server", "token", "create", "dana", "--home", serverHome], { home: home.home })).stdout.trim();
}, 200_000);

afterAll(() => {
  for (const child of started) if (child.exitCode === null) child.kill("SIGKILL");
  sleepers.killAll();
  home?.remove();
});

describe("a server stopped with SIGTERM", () => {
  it("takes no new workflows (503), still answers queries, lets the running one finish, then exits", async () => {
    const server = await start();
    const spec = `workflow:\n  name: finishing-${random()}\n  tasks:\n  - name: nap\n    image: alpine\n    command: ["sleep", "1.5"]\n`;
    const submitted = await call(server.url, "POST", "/api/pool/default/workflow", { spec });
    expect(submitted.status).toBe(201);
    const id = submitted.json.id as string;
    const exited = new Promise<number | null>((resolve) => server.child.once("exit", resolve));
    server.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await call(server.url, "POST", "/api/pool/default/workflow", { spec })).status).toBe(503);
    expect((await call(server.url, "GET", `/api/workflow/${id}`)).json.status).toMatch(/RUNNING|WAITING|PENDING/);
    expect(await exited).toBe(0);
    expect(server.out()).toMatch(/taking no new workflows; waiting for 1 running/);
    const query = await troupe(["query", id, "--output", "json"], { home: serverHome });
    expect((JSON.parse(query.stdout) as { status: string }).status).toBe("COMPLETED");
  });
});

describe("a server killed with SIGKILL", () => {
  it("leaves no workflow RUNNING: the next start settles it FAILED_SERVER_ERROR with a reason, and none of its tasks runs on", async () => {
    const first = await start();
    const sleep = sleepers.sleep(1000);
    const spec = `workflow:\n  name: doomed-${random()}\n  tasks:\n  - name: nap\n    image: alpine\n    command: ["sleep", "${sleep}"]\n`;
    const submitted = await call(first.url, "POST", "/api/pool/default/workflow", { spec });
    expect(submitted.status).toBe(201);
    const id = submitted.json.id as string;
    expect(
      await waitFor(
        () => processesWith(sleep).length,
        (n) => n > 0,
        15_000,
      ),
    ).toBeGreaterThan(0);
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    // The task died with the server (its sandbox with the spawner).
    expect(
      await waitFor(
        () => processesWith(sleep).length,
        (n) => n === 0,
        5_000,
      ),
    ).toBe(0);

    const second = await start();
    const settled = new RegExp(`FAILED_SERVER_ERROR: .*${id}`);
    expect(
      await waitFor(
        () => second.out(),
        (out) => settled.test(out),
        5_000,
      ),
    ).toMatch(settled);
    const record = await call(second.url, "GET", `/api/workflow/${id}`);
    expect(record.json.status).toBe("FAILED_SERVER_ERROR");
    const events = (await call(second.url, "GET", `/api/workflow/${id}/events`)).json.events as Array<{ to: string; reason: string }>;
    expect(events.at(-1)).toMatchObject({ to: "FAILED_SERVER_ERROR" });
    expect(events.at(-1)!.reason).toMatch(/died|gone|process/);
    // And it goes on serving.
    const next = await call(second.url, "POST", "/api/pool/default/workflow", {
      spec: `workflow:\n  name: after-${random()}\n  tasks:\n  - name: ok\n    image: alpine\n    command: ["true"]\n`,
    });
    expect(next.status).toBe(201);
  });
});
