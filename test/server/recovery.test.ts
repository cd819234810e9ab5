/**
 * Acceptance: the server ends while workflows run (SIGKILL, or SIGTERM) and
 * starts again. Its tasks outlive it under their keepers: the next start
 * resumes the runs, re-attaches the tasks still running, reads how the others
 * ended while it was down, and runs what comes after them; a task whose
 * keeper was killed too is FAILED_SERVER_ERROR with the reason. Nothing is
 * lost: every log line, every transition.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, processesWith, random, sleepMarkers, troupe, waitFor } from "../run/helpers.js";
import { killKeptTasksOf, startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let token: string;
const sleepers = sleepMarkers(4);
const started: ChildProcess[] = [];

async function start(isolation = "none"): Promise<StartedServer> {
  const server = await startServer(serverHome, ["--runtime", "host", "--isolation", isolation]);
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

async function submit(url: string, spec: string): Promise<string> {
  const submitted = await call(url, "POST", "/api/pool/default/workflow", { spec });
  expect(submitted.status).toBe(201);
  return submitted.json.id as string;
}

interface WorkflowRecord {
  status: string;
  groups: Array<{ name: string; status: string; tasks: Array<{ name: string; status: string; exit_code: number | null }> }>;
}

async function record(url: string, id: string): Promise<WorkflowRecord> {
  return (await call(url, "GET", `/api/workflow/${id}`)).json as unknown as WorkflowRecord;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The record once the run has ended (or as it is after `ms`). */
async function ended(url: string, id: string, ms = 30_000): Promise<WorkflowRecord> {
  for (const deadline = Date.now() + ms; ; await pause(100)) {
    const r = await record(url, id);
    if (!/RUNNING|PENDING|WAITING/.test(r.status) || Date.now() > deadline) return r;
  }
}

const task = (r: WorkflowRecord, name: string) => r.groups.flatMap((g) => g.tasks).find((t) => t.name === name)!;

async function logOf(url: string, id: string, name: string): Promise<string> {
  const response = await fetch(`${url}/api/workflow/${id}/logs?task=${name}`, { headers: { authorization: `Bearer ${token}` } });
  return response.text();
}

/** The keeper of a host task: the parent of the sandbox's PID 1, the parent of the command. */
function keeperOf(pid: number): number {
  const parent = (p: number) => Number(readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
  return parent(parent(pid));
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  token = (await troupe(["server", "token", "create", "dana", "--home", serverHome], { home: home.home })).stdout.trim();
}, 200_000);

afterAll(() => {
  for (const child of started) if (child.exitCode === null) child.kill("SIGKILL");
  killKeptTasksOf(serverHome);
  sleepers.killAll();
  home?.remove();
});

// netns: the group's network (the run's bridge) outlives the server too, and the next start does not sweep it.
const isolations = process.getuid?.() === 0 ? ["none", "netns"] : ["none"];

describe.each(isolations)("a server killed with SIGKILL while workflows run (isolation %s)", (isolation) => {
  it("resumes them at the next start: running tasks re-attached, ended ones read, the rest run; a task whose keeper died is FAILED_SERVER_ERROR", async () => {
    const first = await start(isolation);
    const long = sleepers.sleep(8);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const lost = sleepers.sleep(1000);
    const side = sleepers.sleep(600);
    // A chain: `long` (lead, with a sibling it stops when it ends) outlives the restart; `after` reads its output.
    const chain = await submit(
      first.url,
      `workflow:
  name: chain-${random()}
  groups:
  - name: first
    tasks:
    - name: long
      lead: true
      image: alpine
      command: ["sh", "-c", "echo begun; sleep ${long}; echo hello | nc -N -w 3 {{host:side}} ${port} && echo reached-side; echo ended; echo payload > {{output}}/data"]
    - name: side
      image: alpine
      command: ["sh", "-c", "nc -lk ${port} >/dev/null & sleep ${side}"]
  - name: second
    tasks:
    - name: after
      image: alpine
      command: ["sh", "-c", "cat {{input:0}}/data"]
      inputs: [{task: long}]
`,
    );
    // Ends while no server is there (once the test lets it): its exit code is read at the next start.
    const flag = join(home.outsideTmp(), `let-quick-end-${random()}`);
    const quick = await submit(
      first.url,
      `workflow:\n  name: quick-${random()}\n  tasks:\n  - name: quick\n    image: alpine\n    command: ["sh", "-c", "while [ ! -e ${flag} ]; do sleep 0.05; done; echo bye; exit 3"]\n`,
    );
    const doomed = await submit(
      first.url,
      `workflow:\n  name: doomed-${random()}\n  tasks:\n  - name: nap\n    image: alpine\n    command: ["sleep", "${lost}"]\n`,
    );
    const running = await waitFor(
      () => processesWith(long).length > 0 && processesWith(lost).length > 0 && processesWith(flag).length > 0,
      (both) => both,
      15_000,
    );
    expect(running).toBe(true);
    await pause(300);
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));

    // The tasks go on without the server; one keeper is killed too, so how its task ends cannot be known.
    expect(processesWith(long).length).toBeGreaterThan(0);
    const longPids = processesWith(long).map((p) => p.pid);
    process.kill(keeperOf(processesWith(lost)[0]!.pid), "SIGKILL");
    expect(
      await waitFor(
        () => processesWith(lost).length,
        (n) => n === 0,
        30_000,
      ),
    ).toBe(0);
    writeFileSync(flag, "");
    const quickExit = join(serverHome, "runs", quick, "kept", "quick.0", "exit");
    expect(
      await waitFor(
        () => existsSync(quickExit),
        (there) => there,
        30_000,
      ),
    ).toBe(true);

    const second = await start(isolation);
    const resumedLine = await waitFor(
      () => /resumed the runs .*/.exec(second.out())?.[0] ?? "",
      (line) => line !== "",
      30_000,
    );
    expect(resumedLine.split(": ")[1]!.split(", ").sort()).toEqual([chain, doomed, quick].sort());
    expect(processesWith(long).map((p) => p.pid)).toEqual(longPids); // re-attached, not started again

    const chainRecord = await ended(second.url, chain);
    expect(chainRecord.status).toBe("COMPLETED");
    expect(task(chainRecord, "long")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(task(chainRecord, "after")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(await logOf(second.url, chain, "long")).toBe("begun\nreached-side\nended\n");
    expect(await logOf(second.url, chain, "after")).toBe("payload\n");
    // Nothing of the run's network is left once it has ended: neither the first server's bridge nor the second's.
    const bridgesOf = (id: string) =>
      (JSON.parse(execFileSync("ip", ["-j", "link", "show"], { encoding: "utf8" })) as Array<{ ifalias?: string }>).filter((l) =>
        (l.ifalias ?? "").includes(id),
      );
    expect(
      await waitFor(
        () => bridgesOf(chain).length,
        (n) => n === 0,
        30_000,
      ),
    ).toBe(0);
    const events = (await call(second.url, "GET", `/api/workflow/${chain}/events`)).json.events as Array<{
      from: string;
      to: string;
      reason: string;
    }>;
    expect(events.some((e) => e.from === "RUNNING" && e.to === "RUNNING" && /resumed/.test(e.reason))).toBe(true);

    const quickRecord = await ended(second.url, quick);
    expect(quickRecord.status).toBe("FAILED");
    expect(task(quickRecord, "quick")).toMatchObject({ status: "FAILED", exit_code: 3 });
    expect(await logOf(second.url, quick, "quick")).toBe("bye\n");

    const doomedRecord = await ended(second.url, doomed);
    expect(doomedRecord.status).toBe("FAILED_SERVER_ERROR");
    expect(task(doomedRecord, "nap")).toMatchObject({ status: "FAILED_SERVER_ERROR", exit_code: 3002 });
    const doomedEvents = (await call(second.url, "GET", `/api/workflow/${doomed}/events`)).json.events as Array<{ reason: string }>;
    expect(doomedEvents.map((e) => e.reason).join("\n")).toMatch(/how it ended is unknown/);
    expect(processesWith(side)).toEqual([]); // `side` was stopped with its lead

    // And it goes on serving.
    const next = await submit(
      second.url,
      `workflow:\n  name: after-${random()}\n  tasks:\n  - name: ok\n    image: alpine\n    command: ["true"]\n`,
    );
    expect((await ended(second.url, next)).status).toBe("COMPLETED");
    await second.stop();
    // A stop leaves running work to the next start, never what ended work made: no bridge, no rule of these runs.
    const rules = ["filter", "nat"].map((table) => execFileSync("iptables", ["-t", table, "-S"], { encoding: "utf8" })).join("");
    for (const id of [chain, quick, doomed, next]) {
      expect(bridgesOf(id)).toEqual([]);
      expect(rules.split("\n").filter((rule) => rule.includes(id))).toEqual([]);
    }
  }, 120_000);
});

describe("a server stopped with SIGTERM", () => {
  it("exits at once, leaving its running workflow to the next start, which finishes it", async () => {
    const first = await start();
    // The task runs until the test lets it end (a file in its output directory), so that it is still running when
    // the server has exited, unless the server waited for it; `nap` marks its command line.
    const nap = sleepers.sleep(2);
    const id = await submit(
      first.url,
      `workflow:\n  name: handed-over-${random()}\n  tasks:\n  - name: nap\n    image: alpine\n    command: ["sh", "-c", "nap=${nap}; until [ -e {{output}}/go ]; do sleep 0.1; done; echo rested"]\n`,
    );
    await waitFor(
      () => processesWith(nap).length,
      (n) => n > 0,
      15_000,
    );
    const exited = new Promise<number | null>((resolve) => first.child.once("exit", resolve));
    first.child.kill("SIGTERM");
    const deadline = new Promise<string>((resolve) => setTimeout(() => resolve("still running 30 s after SIGTERM"), 30_000).unref());
    // The server does not wait for its task, which cannot end before the test lets it.
    expect(await Promise.race([exited, deadline])).toBe(0);
    expect(first.out()).toMatch(/SIGTERM: stopping; 1 running workflows go on/);
    expect(processesWith(nap).length).toBeGreaterThan(0);
    writeFileSync(join(serverHome, "runs", id, "outputs", "nap", "0", "go"), "");

    const second = await start();
    const r = await ended(second.url, id);
    expect(r.status).toBe("COMPLETED");
    expect(await logOf(second.url, id, "nap")).toBe("rested\n");
    await second.stop();
  }, 120_000);
});
