/**
 * A server pool with `runtime: slurm` on the real test cluster: a submitted workflow's group runs as one
 * batch job over the nodes, its members on distinct nodes reaching each other; the pool's capacity is the
 * cluster's (sinfo), so a workflow that can never fit is refused at submission with the numbers. Skipped
 * only when no cluster can start here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, random, TestHome, troupe, type RunRecord } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";
import { attemptCluster, lockCluster, slurm, type SlurmCluster } from "./slurm-cluster.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/server.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`a server pool with runtime: slurm (${attempt.reason ?? "the test cluster"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  let home: TestHome;
  let server: StartedServer | undefined;
  let token: string;
  let serverHome: string;
  let config: string;
  const start = () => startServer(serverHome, ["--config", config], { SLURM_CONF: cluster.env.SLURM_CONF! });

  // The test files' lock on the cluster, shared: a test of another file that kills a slurmd or drains a node waits.
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await lockCluster(cluster, "shared");
  }, 300_000);
  afterAll(() => release?.());

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    serverHome = home.outsideTmp();
    token = (await troupe(["server", "token", "create", "sam", "--home", serverHome], { home: home.home })).stdout.trim();
    config = path.join(serverHome, "pools.yaml");
    fs.writeFileSync(
      config,
      `pools:\n- name: cluster\n  runtime: slurm\n  partition: main\n  shared_dir: ${cluster.shared}\n  listen_address: ${cluster.loginAddress}\n`,
    );
    server = await start();
  }, 200_000);

  afterAll(async () => {
    await server?.stop();
    home?.remove();
  });

  const client = (args: string[]) =>
    troupe(args, {
      home: home.home,
      env: { TROUPE_SERVER: server!.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() },
      timeoutMs: 90_000,
    });

  it("runs a submitted group as one job over two nodes, its client reaching its server by {{host:server}}", async () => {
    const group = `pair-${random(3)}`;
    const file = home.spec(
      "pair",
      `workflow:
  name: slurm-pair
  groups:
  - name: ${group}
    tasks:
    - name: server
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "echo hi | nc -w 30 -l -p 24832; echo served"]
    - name: client
      image: alpine:3.18
      command: ["sh", "-c", "for i in $(seq 1 100); do got=$(nc -w 3 {{host:server}} 24832 2>/dev/null) && [ -n \\"$got\\" ] && break; sleep 0.2; done; [ \\"$got\\" = hi ]"]
`,
    );
    const run = await client(["workflow", "submit", file, "--pool", "cluster", "--wait", "--output", "json"]);
    expect(run.code, run.stderr).toBe(0);
    const record = JSON.parse(run.stdout) as RunRecord;
    const ips = record.groups[0]!.tasks.map((t) => t.ip);
    expect(new Set(ips).size).toBe(2);
    for (const ip of ips) expect([1, 2, 3].map((i) => cluster.nodeAddress(i))).toContain(ip);
    const left = (await slurm(cluster, "squeue", ["-h", "-o", "%j"])).split("\n").filter((name) => name.endsWith(`-${group}`));
    expect(left).toEqual([]);
  }, 120_000);

  it("a server killed (SIGKILL) while its task runs on a node: the next start re-attaches it, and its end and whole log are the run's", async () => {
    const go = path.join(home.outsideTmp(), "go");
    const spec = `workflow:\n  name: slurm-kept\n  tasks:\n  - name: kept\n    image: alpine:3.18\n    command: ["sh", "-c", "echo begun; while [ ! -e ${go} ]; do sleep 0.1; done; echo done; exit 5"]\n`;
    const api = async (method: string, route: string, body?: unknown) => {
      const response = await fetch(server!.url + route, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const id = (await api("POST", "/api/pool/cluster/workflow", { spec })).id as string;
    const record = () => api("GET", `/api/workflow/${id}`) as Promise<unknown> as Promise<RunRecord>;
    const log = async () =>
      (await fetch(`${server!.url}/api/workflow/${id}/logs?task=kept`, { headers: { authorization: `Bearer ${token}` } })).text();
    for (const deadline = Date.now() + 60_000; !(await log()).includes("begun");) {
      if (Date.now() > deadline) throw new Error(`the task did not begin: ${JSON.stringify(await record())}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const killed = new Promise((resolve) => server!.child.once("exit", resolve));
    server!.child.kill("SIGKILL");
    await killed;
    server = await start();
    fs.writeFileSync(go, "");
    let ended: RunRecord | undefined;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
      const now = await record();
      if (!/RUNNING|PENDING|WAITING/.test(now.status)) {
        ended = now;
        break;
      }
    }
    expect(ended?.status).toBe("FAILED");
    expect(ended!.groups[0]!.tasks[0]).toMatchObject({ status: "FAILED", exit_code: 5 });
    expect(await log()).toContain("begun\ndone\n");
  }, 150_000);

  it("its capacity is the cluster's: a workflow that can never fit is refused with the numbers", async () => {
    const file = home.spec(
      "huge",
      `workflow:\n  name: huge\n  resources:\n    all: {cpu: 100}\n  tasks:\n  - {name: big, image: alpine:3.18, resource: all, command: ["true"]}\n`,
    );
    const refused = await client(["workflow", "submit", file, "--pool", "cluster"]);
    expect(refused.code).toBe(2);
    const cpus = Number(cluster.env.TROUPE_SLURM_NODES ?? 3) * Number(cluster.env.TROUPE_SLURM_CPUS ?? 4);
    expect(refused.stderr).toContain(`needs more than the pool cluster has (cpu 100 of ${cpus}`);
  }, 60_000);
});
