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
import { attemptCluster, slurm, type SlurmCluster } from "./slurm-cluster.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/slurm/server.test.ts skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`a server pool with runtime: slurm (${attempt.reason ?? "the test cluster"})`, () => {
  const cluster = attempt.cluster as SlurmCluster;
  let home: TestHome;
  let server: StartedServer | undefined;
  let token: string;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const serverHome = home.outsideTmp();
    token = (await troupe(["server", "token", "create", "sam", "--home", serverHome], { home: home.home })).stdout.trim();
    const config = path.join(serverHome, "pools.yaml");
    fs.writeFileSync(
      config,
      `pools:\n- name: cluster\n  runtime: slurm\n  partition: main\n  shared_dir: ${cluster.shared}\n  listen_address: ${cluster.loginAddress}\n`,
    );
    server = await startServer(serverHome, ["--config", config], { SLURM_CONF: cluster.env.SLURM_CONF! });
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
