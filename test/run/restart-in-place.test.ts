/**
 * OSMO's restart in place: when a member of a group is rescheduled (the
 * lead, or any member with `ignoreNonleadStatus: false`), its siblings'
 * commands restart in the sandbox or container they ran in, so the files
 * they wrote survive (OSMO's own test/workflow/restart.yaml relies on it),
 * through the group's barrier again with the rescheduled member's fresh
 * attempt. The attempt goes on, as OSMO records it: the same retry id, one
 * log, RUNNING -> RUNNING twice in its transitions (stopped, restarted).
 * The workflows are modeled on OSMO's restart.yaml (written here).
 *
 * Needs busybox on the host (its nc) and, for containers, the test images of
 * scripts/test-images.sh and CONTAINERS_CONF on this kind of machine.
 */
import Database from "better-sqlite3";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startServer, type StartedServer } from "../server/helpers.js";
import {
  describeRun,
  ensureBuilt,
  groupOf,
  killStartedRuns,
  random,
  removeRunLeftovers,
  runJson,
  taskOf,
  PodmanService,
  TestHome,
  troupe,
  type RunRecord,
  type RunTarget,
} from "./helpers.js";
import { skipReason, slurmHomeParent, targetTitle } from "./slurm-target.js";
import { holdClusterDuring } from "./target-homes.js";

const home = new TestHome();
const runIds = new Set<string>();

beforeAll(ensureBuilt, 200_000);
afterEach(() => {
  killStartedRuns();
  removeRunLeftovers(runIds);
  runIds.clear();
});
afterAll(() => home.remove());

/** A port of its own for each run: with `--isolation none` tasks share the host's ports. */
const port = () => 20_000 + Math.floor(Math.random() * 20_000);

/**
 * `keeper` writes /tmp/hello.txt on its first start and serves it on its
 * second; `fetcher` fetches it from keeper, a RESCHEDULE while keeper does
 * not serve. Whether fetcher is the lead or not (`lead`), keeper's file is
 * there on its second start only if keeper was restarted in place. The lead
 * waits a little at its end, so that the other one ends on its own.
 */
function restartSpec(lead: "fetcher" | "keeper", p: number): string {
  const waits = (task: string) => (lead === task ? "sleep 2" : "true");
  return `workflow:
  name: restart-${random()}
  groups:
  - name: pair
    ignoreNonleadStatus: false
    tasks:
    - name: keeper
      lead: ${lead === "keeper"}
      image: alpine:3.18
      command: [sh, /tmp/run.sh]
      files:
      - path: /tmp/run.sh
        contents: |
          if [ -f /tmp/hello.txt ]; then
            echo "second start: found $(cat /tmp/hello.txt)"
            busybox nc -l -p ${p} < /tmp/hello.txt
            ${waits("keeper")}
            exit 0
          fi
          echo "first start: writing /tmp/hello.txt"
          echo "hello from keeper" > /tmp/hello.txt
          while true; do sleep 1; done
    - name: fetcher
      lead: ${lead === "fetcher"}
      image: alpine:3.18
      command: [sh, -c]
      args:
      - |
        sleep 1
        busybox nc {{host:keeper}} ${p} > /tmp/got || { echo "attempt $TROUPE_RETRY_ID: keeper not serving"; exit 1; }
        echo "attempt $TROUPE_RETRY_ID: got $(cat /tmp/got)"
        grep -q "hello from keeper" /tmp/got || exit 2
        ${waits("fetcher")}
      exitActions:
        RESCHEDULE: 1
`;
}

interface Transition {
  retry_id: number;
  from_status: string | null;
  to_status: string;
  reason: string;
}

/** The task's attempts and transitions as the troupe.db of `home` (the test's, or a server's) holds them. */
function history(
  runId: string,
  task: string,
  troupeHome = home.home,
): { attempts: Array<{ retry_id: number; status: string; exit_code: number | null }>; transitions: Transition[] } {
  const db = new Database(path.join(troupeHome, "troupe.db"), { readonly: true });
  try {
    const where = "run_id = ? AND (group_idx, task_idx) = (SELECT group_idx, task_idx FROM tasks WHERE run_id = ? AND name = ?)";
    return {
      attempts: db
        .prepare(`SELECT retry_id, status, exit_code FROM task_attempts WHERE ${where} ORDER BY retry_id`)
        .all(runId, runId, task) as Array<{
        retry_id: number;
        status: string;
        exit_code: number | null;
      }>,
      transitions: db
        .prepare(`SELECT retry_id, from_status, to_status, reason FROM transitions WHERE subject = 'task' AND ${where} ORDER BY time, id`)
        .all(runId, runId, task) as Transition[],
    };
  } finally {
    db.close();
  }
}

async function run(
  spec: string,
  target: RunTarget,
  env: Record<string, string> = {},
  code = 0,
  extra: string[] = [],
  at: TestHome = home,
): Promise<RunRecord> {
  const result = await runJson(at.spec("restart", spec), {
    home: at.home,
    target,
    extra: ["--max-retries", "1", ...extra],
    env,
    timeoutMs: 45_000,
  });
  runIds.add(result.record.id);
  expect(result.code, describeRun(result)).toBe(code);
  return result.record;
}

/** keeper restarted in place: one attempt, one log with both starts, stopped and restarted in its transitions. */
function expectRestartedInPlace(record: RunRecord, cause: string, troupeHome = home.home, log = home.log(record.id, "keeper", 0)): void {
  const keeper = history(record.id, "keeper", troupeHome);
  expect(keeper.attempts).toEqual([{ retry_id: 0, status: "COMPLETED", exit_code: 0 }]);
  expect(keeper.transitions.map((t) => `${t.from_status} -> ${t.to_status}`)).toEqual([
    "SUBMITTING -> WAITING",
    "WAITING -> SCHEDULING",
    "SCHEDULING -> INITIALIZING",
    "INITIALIZING -> RUNNING",
    "RUNNING -> RUNNING",
    "RUNNING -> RUNNING",
    "RUNNING -> COMPLETED",
  ]);
  expect(keeper.transitions[4]!.reason).toBe(`${cause} was rescheduled: command stopped, to restart in place (its sandbox and files kept)`);
  expect(keeper.transitions[5]!.reason).toBe("command restarted in place");
  expect(log).toMatch(/^first start: writing \/tmp\/hello.txt\nsecond start: found hello from keeper\n$/);
}

describe.each<{ target: RunTarget; env: Record<string, string>; sandbox: string }>([
  { target: "none", env: {}, sandbox: "troupe-spawner" },
  { target: "netns", env: {}, sandbox: "troupe-spawner" },
  // bubblewrap, with troupe-spawner as its sandbox's PID 1 (`supervise`).
  { target: "none", env: { TROUPE_SANDBOX: "bwrap" }, sandbox: "bubblewrap" },
  { target: "netns", env: { TROUPE_SANDBOX: "bwrap" }, sandbox: "bubblewrap" },
  { target: "container", env: {}, sandbox: "podman" },
])("restart in place ($target, $sandbox)", ({ target, env }) => {
  it("a non-lead's RESCHEDULE (ignoreNonleadStatus: false) restarts the lead's command in its sandbox: its file is there", async () => {
    const record = await run(restartSpec("keeper", port()), target, env);
    expect(record.status).toBe("COMPLETED");
    expect(groupOf(record, "pair").status).toBe("COMPLETED");
    expectRestartedInPlace(record, "fetcher");
    const keeper = taskOf(record, "keeper");
    expect(keeper).toMatchObject({ status: "COMPLETED", exit_code: 0, retry_id: 0 });
    // The rescheduled member: a fresh sandbox, as retry 1.
    expect(history(record.id, "fetcher").attempts).toEqual([
      { retry_id: 0, status: "RESCHEDULED", exit_code: 1 },
      { retry_id: 1, status: "COMPLETED", exit_code: 0 },
    ]);
    expect(home.log(record.id, "fetcher", 0)).toMatch(/attempt 0: keeper not serving\n$/);
    expect(home.log(record.id, "fetcher", 1)).toBe("attempt 1: got hello from keeper\n");
  }, 60_000);

  it("the lead's RESCHEDULE restarts its siblings' commands in place", async () => {
    const record = await run(restartSpec("fetcher", port()), target, env);
    expect(record.status).toBe("COMPLETED");
    expectRestartedInPlace(record, "fetcher");
    expect(taskOf(record, "fetcher")).toMatchObject({ status: "COMPLETED", exit_code: 0, retry_id: 1 });
  }, 60_000);
});

// On Slurm, podman on the nodes: troupe-init keeps the container on its node, its helper carries the request.
describe.skipIf(skipReason("slurm") !== undefined)(`restart in place on Slurm, podman on the nodes (${targetTitle("slurm")})`, () => {
  holdClusterDuring("slurm");
  let onCluster: TestHome;
  beforeAll(() => void (onCluster = new TestHome(slurmHomeParent())));
  afterAll(() => onCluster?.remove());

  it.each(["keeper", "fetcher"] as const)(
    "lead %s: keeper's command restarts in its container on its node, its file is there",
    async (lead) => {
      const record = await run(restartSpec(lead, port()), "slurm", {}, 0, ["--node-engine", "podman"], onCluster);
      expect(record.status).toBe("COMPLETED");
      expectRestartedInPlace(record, "fetcher", onCluster.home, onCluster.log(record.id, "keeper", 0));
      expect(history(record.id, "fetcher", onCluster.home).attempts.map((a) => [a.retry_id, a.status])).toEqual([
        [0, "RESCHEDULED"],
        [1, "COMPLETED"],
      ]);
    },
    90_000,
  );
});

describe("restart in place through the Docker Engine API (podman's, --engine docker)", () => {
  let service: PodmanService | undefined;
  afterAll(() => service?.stop());

  it("the lead's command restarts in its container, its file is there", async () => {
    service = await PodmanService.start();
    const record = await run(restartSpec("keeper", port()), "container", { DOCKER_HOST: service.url }, 0, ["--engine", "docker"]);
    expect(record.status).toBe("COMPLETED");
    expectRestartedInPlace(record, "fetcher");
  }, 60_000);
});

describe("where a runtime cannot restart in place (bubblewrap started by Node's spawn, without troupe-spawner)", () => {
  it("the siblings get fresh attempts, and their records say so (as troupe did before: the file is gone)", async () => {
    const record = await run(restartSpec("keeper", port()), "none", { TROUPE_SANDBOX: "bwrap", TROUPE_SPAWNER: "node" }, 1);
    expect(record.status).toBe("FAILED");
    const keeper = history(record.id, "keeper");
    expect(keeper.attempts.map((a) => [a.retry_id, a.status])).toEqual([
      [0, "RESCHEDULED"],
      [1, "FAILED"],
    ]);
    expect(keeper.transitions.find((t) => t.to_status === "RESCHEDULED")?.reason).toBe("restarted with fetcher in a fresh sandbox");
    expect(home.log(record.id, "keeper", 1)).toBe("first start: writing /tmp/hello.txt\n");
  }, 60_000);
});

describe("restart in place in the server's runs (kept tasks, which outlive the server)", () => {
  let server: StartedServer;
  let serverHome: string;
  let token: string;

  beforeAll(async () => {
    serverHome = fs.mkdtempSync(path.join(home.home, "server-"));
    const config = path.join(serverHome, "pools.yaml");
    fs.writeFileSync(
      config,
      "pools:\n- {name: host, runtime: host, isolation: none, max_retries: 1}\n- {name: podman, runtime: container, engine: podman, max_retries: 1}\n",
    );
    token = (await troupe(["server", "token", "create", "dana", "--home", serverHome], { home: home.home })).stdout.trim();
    server = await startServer(serverHome, ["--config", config]);
  }, 60_000);
  afterAll(() => server?.stop());

  it.each(["host", "podman"])(
    "pool %s: the lead's command restarts in its sandbox, its file is there",
    async (pool) => {
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      const submitted = await fetch(`${server.url}/api/pool/${pool}/workflow`, {
        method: "POST",
        headers,
        body: JSON.stringify({ spec: restartSpec("keeper", port()) }),
      });
      expect(submitted.status).toBe(201);
      const id = ((await submitted.json()) as { id: string }).id;
      runIds.add(id);
      let record: RunRecord;
      for (const deadline = Date.now() + 40_000; ; await new Promise((r) => setTimeout(r, 200))) {
        record = (await (await fetch(`${server.url}/api/workflow/${id}`, { headers })).json()) as RunRecord;
        if (!/RUNNING|PENDING|WAITING/.test(record.status) || Date.now() > deadline) break;
      }
      expect(record.status, JSON.stringify(record)).toBe("COMPLETED");
      const log = await (await fetch(`${server.url}/api/workflow/${id}/logs?task=keeper`, { headers })).text();
      expectRestartedInPlace(record, "fetcher", serverHome, log);
    },
    60_000,
  );
});
