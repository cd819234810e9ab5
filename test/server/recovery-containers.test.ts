/**
 * Acceptance, container pools: a server killed with SIGKILL while a group of
 * containers runs. The containers and their `podman run` outlive it under
 * their keepers; the next start resumes the run, re-attaches them, follows
 * them to their end (every log line kept) and runs what comes after; once
 * the run has ended nothing of it is left: no container, no network. What
 * troupe-init says of a re-attached container counts (an out-of-memory kill),
 * what the task writes in its place does not.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PodmanService, TestHome, ensureBuilt, random, troupe, waitFor } from "../run/helpers.js";
import { killKeptTasksOf, startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let token: string;
const started: ChildProcess[] = [];

const podmanList = (args: string[]): string[] =>
  execFileSync("podman", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 })
    .split("\n")
    .filter(Boolean);
const containersOf = (runId: string) => podmanList(["ps", "-a", "--filter", `label=troupe.run=${runId}`, "--format", "{{.Names}}"]);
const networksOf = (runId: string) => podmanList(["network", "ls", "--filter", `label=troupe.run=${runId}`, "-q"]);

/** The podman CLI, or the Docker Engine API (served by podman's `system service`, started by the test). */
type Engine = "podman" | "docker";
let service: PodmanService | undefined;

async function start(engine: Engine, onHome = serverHome): Promise<StartedServer> {
  if (engine === "podman") {
    const server = await startServer(onHome, ["--runtime", "container"]);
    started.push(server.child);
    return server;
  }
  service ??= await PodmanService.start();
  const config = join(home.outsideTmp(), "docker-pool.yaml");
  writeFileSync(config, "pools:\n- name: default\n  runtime: container\n  engine: docker\n");
  const server = await startServer(onHome, ["--config", config], { DOCKER_HOST: service.url });
  started.push(server.child);
  return server;
}

async function get(url: string, route: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url + route, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, text: await response.text() };
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  token = (await troupe(["server", "token", "create", "cleo", "--home", serverHome], { home: home.home })).stdout.trim();
}, 200_000);

const runIds: string[] = [];
afterAll(async () => {
  for (const child of started) if (child.exitCode === null) child.kill("SIGKILL");
  killKeptTasksOf(serverHome);
  for (const runId of runIds) {
    for (const name of containersOf(runId)) execFileSync("podman", ["rm", "--force", name], { stdio: "ignore" });
    for (const name of networksOf(runId)) execFileSync("podman", ["network", "rm", "--force", name], { stdio: "ignore" });
  }
  // The podman service the test started, by its PID.
  await service?.stop();
  home?.remove();
});

describe.each(["podman", "docker"] as const)("a container pool's server (engine %s) killed with SIGKILL", (engine) => {
  it("re-attaches its running containers at the next start and finishes the run, leaving nothing behind", async () => {
    const first = await start(engine);
    const spec = `workflow:
  name: boxes-${random()}
  resources:
    small:
      memory: 64Mi
  groups:
  - name: pair
    tasks:
    - name: lead
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "echo begun; sleep 6; ping -c 1 -W 2 {{host:peer}} >/dev/null && echo reached-peer; echo result > {{output}}/r; echo oom > /.troupe/ctl/oom; echo 'verdict x 137 1' > /.troupe/ctl/verdict"]
    - name: peer
      image: alpine:3.18
      command: ["sleep", "600"]
  - name: hogging
    tasks:
    - name: hog
      image: alpine:3.18
      resource: small
      command: ["sh", "-c", "sleep 6; x=$(head -c 300000000 /dev/zero | tr '\\\\0' a); echo survived"]
  - name: next
    tasks:
    - name: reader
      image: alpine:3.18
      command: ["cat", "{{input:0}}/r"]
      inputs: [{task: lead}]
`;
    const submitted = await fetch(`${first.url}/api/pool/default/workflow`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ spec }),
    });
    expect(submitted.status).toBe(201);
    const runId = ((await submitted.json()) as { id: string }).id;
    runIds.push(runId);
    const deadline = Date.now() + 60_000;
    while (!(await get(first.url, `/api/workflow/${runId}/logs?task=lead`)).text.includes("begun")) {
      if (Date.now() > deadline) throw new Error("the lead never started");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Both groups are up (the hogging one starts beside the pair, maybe after the lead has begun).
    while (containersOf(runId).length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const containersBefore = containersOf(runId).sort();
    expect(containersBefore.length).toBe(3);
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    expect(containersOf(runId).sort()).toEqual(containersBefore); // they go on without the server
    // A server of another home on the same engine sweeps what dead owners left, but not this home's kept run:
    // that is its own server's to resume.
    const neighbour = await start(engine, home.outsideTmp());
    await neighbour.stop();
    expect(neighbour.out()).not.toContain(runId);
    // (The lead and the hog may have ended meanwhile; the peer sleeps on.)
    expect(containersOf(runId)).toContain(containersBefore.find((name) => name.includes("-peer-")));

    const second = await start(engine);
    let record: { status: string; groups: Array<{ tasks: Array<{ name: string; status: string; exit_code: number | null }> }> };
    for (const until = Date.now() + 90_000; ; await new Promise((resolve) => setTimeout(resolve, 200))) {
      record = JSON.parse((await get(second.url, `/api/workflow/${runId}`)).text) as typeof record;
      if (!/RUNNING|PENDING|WAITING/.test(record.status) || Date.now() > until) break;
    }
    expect(second.out()).toMatch(new RegExp(`resumed the runs .*${runId}`));
    expect(record.status).toBe("FAILED"); // the hog
    const tasks = Object.fromEntries(record.groups.flatMap((g) => g.tasks).map((t) => [t.name, t]));
    expect(tasks.lead).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(tasks.hog).toMatchObject({ status: "FAILED", exit_code: 137 });
    const events = (
      JSON.parse((await get(second.url, `/api/workflow/${runId}/events`)).text) as {
        events: Array<{ task: string | null; reason: string }>;
      }
    ).events;
    const said = (task: string) =>
      events
        .filter((e) => e.task === task)
        .map((e) => e.reason)
        .join("\n");
    expect(said("hog")).toMatch(/killed: more memory than its limit/);
    expect(said("lead")).not.toMatch(/memory/);
    expect(tasks.reader).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect((await get(second.url, `/api/workflow/${runId}/logs?task=lead`)).text).toBe("begun\nreached-peer\n");
    expect((await get(second.url, `/api/workflow/${runId}/logs?task=reader`)).text).toBe("result\n");
    // Nothing of the run is left: the re-attached containers ended, the earlier server's networks were removed.
    expect(
      await waitFor(
        () => [...containersOf(runId), ...networksOf(runId)],
        (left) => left.length === 0,
        10_000,
      ),
    ).toEqual([]);
    await second.stop();
  }, 180_000);
});
