/**
 * A server validates, renders and plans submissions in worker threads (issue
 * 11): a pathological dry run in flight delays neither a running workflow's
 * timers nor another user's submission. Before, one such dry run delayed
 * another user's submission by 17 s and made a 2 s exec_timeout fire after 15 s.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, sleepMarkers, troupe } from "../run/helpers.js";
import { request, startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let server: StartedServer | undefined;
const tokens: Record<string, string> = {};
const sleepers = sleepMarkers(7);

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  const serverHome = home.outsideTmp();
  for (const name of ["alice", "bob", "carol"]) {
    const made = await troupe(["server", "token", "create", name, "--home", serverHome], { home: home.home });
    expect(made.code, made.stderr).toBe(0);
    tokens[name] = made.stdout.trim();
  }
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
}, 200_000);

afterAll(async () => {
  await server?.stop();
  sleepers.killAll();
  home?.remove();
});

async function call(user: string, method: string, target: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${tokens[user]}`, "content-type": "application/json" };
  const started = Date.now();
  const response = await request(server!.url, method, target, headers, body === undefined ? undefined : JSON.stringify(body));
  return { status: response.status, json: JSON.parse(response.text) as Record<string, unknown>, seconds: (Date.now() - started) / 1000 };
}

/** About 8 MB: 100,000 tasks, each taking input from a task that does not exist. */
function pathological(): string {
  const lines = ["workflow:", "  name: unknown-inputs", "  tasks:"];
  for (let i = 0; i < 100_000; i++) lines.push(`  - {name: t${i}, image: alpine, command: [run], inputs: [{task: missing${i}}]}`);
  return lines.join("\n") + "\n";
}

describe("validation off the engines' thread", () => {
  it("a running workflow's exec_timeout fires on time and another user is answered promptly while pathological dry runs are validated", async () => {
    const slow = `workflow:
  name: timed-${random()}
  timeout:
    exec_timeout: 2s
  tasks:
  - name: nap
    image: alpine:3.18
    command: ["sleep", "${sleepers.sleep(60)}"]
`;
    const submitted = await call("alice", "POST", "/api/pool/default/workflow", { spec: slow });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const id = String(submitted.json.id);
    // Bob's dry runs come once the task runs: its exec_timeout counts from then.
    let status = "";
    for (let i = 0; i < 100 && status !== "RUNNING"; i++) {
      status = String((await call("alice", "GET", `/api/workflow/${id}`)).json.status);
      if (status !== "RUNNING") await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe("RUNNING");

    // Bob's pathological dry runs, in flight together.
    const spec = pathological();
    let bobsAnswered = 0;
    const bobs = Array.from({ length: 3 }, () =>
      call("bob", "POST", "/api/pool/default/workflow", { spec, dry_run: true }).finally(() => bobsAnswered++),
    );
    // Carol, meanwhile (once Bob's bodies have arrived and are being validated).
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const carol = await call("carol", "POST", "/api/pool/default/workflow", {
      spec: "workflow:\n  name: small\n  tasks:\n  - {name: a, image: alpine, command: [echo]}\n",
      dry_run: true,
    });
    expect(carol.status, JSON.stringify(carol.json)).toBe(200);
    // Answered while Bob's were still being validated: not queued behind them (as when one thread did it all).
    expect(bobsAnswered, `Carol's answer took ${carol.seconds} s`).toBeLessThan(3);

    // Alice's run ended by its exec_timeout, 2 s after it started.
    let record: Record<string, unknown> = {};
    for (let i = 0; i < 200 && !/^(FAILED|COMPLETED)/.test(String(record.status)); i++) {
      record = (await call("alice", "GET", `/api/workflow/${id}`)).json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const group = (record.groups as Array<{ status: string; start_time: string; end_time: string }>)[0]!;
    expect(group.status).toBe("FAILED_EXEC_TIMEOUT");
    const ranFor = (Date.parse(group.end_time) - Date.parse(group.start_time)) / 1000;
    // At least the exec_timeout, and on its own timer: not delayed by the validations (before: 15 s for 2 s).
    expect(ranFor).toBeGreaterThanOrEqual(1.9);
    expect(ranFor).toBeLessThan(2 * 2);

    for (const bob of await Promise.all(bobs)) {
      expect(bob.status).toBe(400);
      expect((bob.json.diagnostics as unknown[]).length).toBe(1001);
    }
  }, 180_000);
});
