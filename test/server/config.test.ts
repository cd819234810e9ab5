/**
 * Acceptance: `troupe server --config FILE` offers the pools the file
 * declares, each with its runtime, capacity, retry limit and default exit
 * actions; a wrong config file is refused at start with the field at fault.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, troupe, type RunRecord } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
let url: string;
let token: string;

const CONFIG = `pools:
- name: retrying
  runtime: host
  isolation: none
  max_retries: 1
  exit_actions: {RESCHEDULE: "3"}
- name: small
  runtime: host
  isolation: none
  cpus: 1
`;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  token = (await troupe(["server", "token", "create", "erin", "--home", serverHome], { home: home.home })).stdout.trim();
  const config = path.join(serverHome, "pools.yaml");
  fs.writeFileSync(config, CONFIG);
  server = await startServer(serverHome, ["--config", config]);
  url = server.url;
}, 200_000);

afterAll(async () => {
  await server?.stop();
  home?.remove();
});

function client(args: string[]) {
  return troupe(args, {
    home: home.home,
    env: { TROUPE_SERVER: url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() },
    timeoutMs: 30_000,
  });
}

describe("troupe server --config", () => {
  it("a pool's default exit actions and retry limit apply to its workflows", async () => {
    // Exits 3 on its first attempt: the pool says RESCHEDULE for 3, and allows one retry.
    const file = home.spec(
      "flaky",
      `workflow:
  name: flaky-${random()}
  tasks:
  - name: flaky
    image: alpine
    command: ["sh", "-c", "[ \\"$(basename {{output}})\\" = 0 ] && exit 3; echo second"]
`,
    );
    const run = await client(["workflow", "submit", file, "--pool", "retrying", "--wait", "--output", "json"]);
    expect(run.code, run.stderr).toBe(0);
    const record = JSON.parse(run.stdout) as RunRecord & { pool: string };
    expect(record.pool).toBe("retrying");
    expect(record.groups[0]!.tasks[0]).toMatchObject({ status: "COMPLETED", retry_id: 1, exit_code: 0 });
  });

  it("a pool's capacity bounds what it takes; an unknown pool is refused", async () => {
    const file = home.spec(
      "big",
      `workflow:
  name: big-${random()}
  resources:
    two: {cpu: 2}
  tasks:
  - name: wide
    image: alpine
    resource: two
    command: ["true"]
`,
    );
    const refused = await client(["workflow", "submit", file, "--pool", "small"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/needs more than the pool small has \(cpu 2 of 1/);
    const unknown = await client(["workflow", "submit", file, "--pool", "nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no pool named nope/);
  });

  it("a pool's capacity is shared by its workflows; a HIGH one waiting for it goes before a LOW one", async () => {
    const flag = path.join(home.outsideTmp(), `holder-may-end-${random()}`);
    const submit = async (name: string, priority: string, command: string) => {
      const spec = `workflow:\n  name: ${name}-${random()}\n  resources:\n    one: {cpu: 1}\n  tasks:\n  - name: ${name}\n    image: alpine\n    resource: one\n    command: ["sh", "-c", ${JSON.stringify(command)}]\n`;
      const response = await fetch(`${url}/api/pool/small/workflow`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ spec, priority }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { id: string }).id;
    };
    const record = async (id: string) =>
      (await (await fetch(`${url}/api/workflow/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as RunRecord;
    const until = async (id: string, done: (r: RunRecord) => boolean) => {
      for (const deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 50))) {
        const r = await record(id);
        if (done(r) || Date.now() > deadline) return r;
      }
    };
    const holder = await submit("holder", "NORMAL", `while [ ! -e ${flag} ]; do sleep 0.05; done`);
    await until(holder, (r) => r.groups[0]!.status === "RUNNING");
    const low = await submit("low", "LOW", "true");
    const high = await submit("high", "HIGH", "true");
    await new Promise((r) => setTimeout(r, 300));
    expect((await record(low)).groups[0]!.status).toBe("SCHEDULING"); // the pool's one cpu is the holder's
    expect((await record(high)).groups[0]!.status).toBe("SCHEDULING");
    fs.writeFileSync(flag, "");
    const [lowDone, highDone] = [await until(low, (r) => r.status === "COMPLETED"), await until(high, (r) => r.status === "COMPLETED")];
    expect(lowDone.status).toBe("COMPLETED");
    expect(highDone.status).toBe("COMPLETED");
    // One cpu: the LOW workflow's task started only once the HIGH one's had ended.
    expect(lowDone.groups[0]!.tasks[0]!.start_time! >= highDone.groups[0]!.tasks[0]!.end_time!).toBe(true);
  });

  it.each([
    ["a field of the wrong type", "pools:\n- name: p\n  cpus: many\n", /pools\.0\.cpus/],
    ["an unknown field", "pools:\n- name: p\n  cpu: 2\n", /pools\.0.*cpu/],
    ["bad exit ranges", 'pools:\n- name: p\n  exit_actions: {FAIL: "x-y"}\n', /pools\.0\.exit_actions/],
    ["two pools of one name", "pools:\n- name: p\n- name: p\n", /pool names must differ/],
    ["not YAML", "pools: [\n", /--config/],
    [
      "an unknown runtime",
      "pools:\n- name: gpu\n  runtime: mesos\n",
      /pools\.0\.runtime: pool gpu: no runtime named mesos; the runtimes: container, host, kubernetes, slurm/,
    ],
    ["a runtime option of the wrong type", "pools:\n- name: p\n  engine: 5\n", /pools\.0\.engine/],
    ["an option of another runtime", "pools:\n- name: p\n  runtime: host\n  pull: never\n", /pool p: runtime host does not take pull/],
  ])("refuses %s at start, naming it (exit 2)", async (_what, text, message) => {
    const config = path.join(home.outsideTmp(), "bad.yaml");
    fs.writeFileSync(config, text);
    const result = await troupe(["server", "--home", serverHome, "--port", "0", "--config", config], {
      home: home.home,
      timeoutMs: 10_000,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
