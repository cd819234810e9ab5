/**
 * A troupe server has no data credentials yet: a submitted task with `url:`
 * data fails to start (FAILED_START_ERROR, 3003) saying so, rather than
 * running without its inputs or dropping its outputs. Likewise a task with
 * `credentials:`, rather than running without its secrets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, TestHome, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";

describe("url: data on a server", () => {
  let home: TestHome;
  let server: StartedServer | undefined;
  let env: Record<string, string>;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const serverHome = home.outsideTmp();
    const created = await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home });
    expect(created.code, created.stderr).toBe(0);
    server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
    env = { TROUPE_SERVER: server.url, TROUPE_TOKEN: created.stdout.trim(), XDG_CONFIG_HOME: home.outsideTmp() };
  }, 200_000);

  afterAll(async () => {
    await server?.stop();
    home?.remove();
  });

  it("fails the task at its start, saying the server's runs have no data credentials", async () => {
    const file = home.spec(
      "server-url",
      `workflow:
  name: server-url
  tasks:
  - name: t
    image: alpine:3.18
    command: [sh, -c, "echo ran"]
    outputs:
    - url: s3://bucket/out
`,
    );
    const submitted = await troupe(["workflow", "submit", file, "--wait"], { home: home.home, env, timeoutMs: 60_000 });
    expect(submitted.code, submitted.stdout + submitted.stderr).toBe(1);
    const id = /server-url-\d+/.exec(submitted.stdout + submitted.stderr)![0];
    const query = await troupe(["workflow", "query", id, "--output", "json"], { home: home.home, env });
    const record = JSON.parse(query.stdout) as { groups: Array<{ tasks: Array<{ status: string; exit_code: number; reason?: string }> }> };
    const task = record.groups[0]!.tasks[0]!;
    expect(task).toMatchObject({ status: "FAILED_START_ERROR", exit_code: 3003 });
    expect(JSON.stringify(record)).toContain(
      "s3://bucket/out: url: inputs and outputs need data credentials, which this pool does not have (a troupe server's runs: not yet",
    );
  });

  it("fails a task with credentials: at its start, saying the server's runs have none", async () => {
    const file = home.spec(
      "server-cred",
      `workflow:
  name: server-cred
  tasks:
  - name: t
    image: alpine:3.18
    command: [sh, -c, "echo ran"]
    credentials:
      api: {TOKEN: token}
`,
    );
    const submitted = await troupe(["workflow", "submit", file, "--wait"], { home: home.home, env, timeoutMs: 60_000 });
    expect(submitted.code, submitted.stdout + submitted.stderr).toBe(1);
    const id = /server-cred-\d+/.exec(submitted.stdout + submitted.stderr)![0];
    const query = await troupe(["workflow", "query", id, "--output", "json"], { home: home.home, env });
    const record = JSON.parse(query.stdout) as { groups: Array<{ tasks: Array<{ status: string; exit_code: number }> }> };
    expect(record.groups[0]!.tasks[0]!).toMatchObject({ status: "FAILED_START_ERROR", exit_code: 3003 });
    expect(JSON.stringify(record)).toContain(
      "`credentials:` of task t cannot be given here: only `troupe run` and `troupe restart` have credentials yet",
    );
  });
});
