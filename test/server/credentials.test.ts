/**
 * Credentials on a real `troupe server` (host runtime, loopback, real SQLite),
 * through the built client as each user: `troupe credential set|list|delete`
 * go to the server the CLI is pointed at, as the token's user (`--local`: this
 * home's); each user sees, replaces, deletes and uses only their own; a
 * server run's `credentials:` come from its owner's (checked by a digest the
 * task prints of what it got: alice's run gets alice's value, bob's bob's),
 * masked in its log; a run naming a credential its owner does not have is
 * refused at submit, naming task and credential; and no secret is in any file
 * of the server's home but the sealed rows (the database, the server's log,
 * the runs' logs), nor in any API answer.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, random, sleepMarkers, TestHome, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

const ALICE_SECRET = `alice-secret-${random(8)}`;
const BOB_SECRET = `bob-secret-${random(8)}`;
const ALICE_FILE_SECRET = `alice-file-${random(8)}`;
const digest = (value: string) => createHash("sha256").update(value).digest("hex");

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
const tokens: Record<string, string> = {};

/** The client as `user` (pointed at the server by TROUPE_SERVER/TROUPE_TOKEN, with a home of its own). */
const as = (user: string, args: string[], timeoutMs = 60_000) =>
  troupe(args, {
    home: path.join(home.home, `client-${user}`),
    env: { TROUPE_SERVER: server!.url, TROUPE_TOKEN: tokens[user], XDG_CONFIG_HOME: path.join(home.home, "xdg") },
    timeoutMs,
  });

async function api(user: string | undefined, method: string, route: string): Promise<{ status: number; text: string }> {
  const response = await fetch(server!.url + route, {
    method,
    headers: user ? { authorization: `Bearer ${tokens[user]}` } : {},
  });
  return { status: response.status, text: await response.text() };
}

/** Every file under `dir` but the credential key, concatenated (the key is the one thing that may open the rows). */
function everyFile(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && entry.name !== "credential.key") parts.push(fs.readFileSync(file));
  }
  return Buffer.concat(parts);
}

const workflow = (name: string) =>
  home.spec(
    name,
    `workflow:
  name: ${name}
  tasks:
  - name: t
    image: alpine:3.18
    command: [sh, -c]
    args:
    - |
      echo "token=$API_TOKEN"
      printf 'digest=%s\\n' "$(printf %s "$API_TOKEN" | sha256sum | cut -d' ' -f1)"
      printf 'file-digest=%s\\n' "$(printf %s "$(cat /run/creds/key)" | sha256sum | cut -d' ' -f1)"
    credentials:
      api: {API_TOKEN: token}
      files: /run/creds
`,
  );

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  for (const user of ["alice", "bob", "carol"]) {
    const created = await troupe(["server", "token", "create", user, "--home", serverHome], { home: home.home });
    expect(created.code, created.stderr).toBe(0);
    tokens[user] = created.stdout.trim();
  }
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
}, 200_000);

afterAll(async () => {
  await server?.stop();
  home?.remove();
});

describe("credentials on a server", () => {
  it("the client's commands go to the server as the token's user; nobody lists, replaces or deletes another's", async () => {
    const set = await as("alice", ["credential", "set", "api", "--type", "generic", "--payload", `token=${ALICE_SECRET}`, "user=alice"]);
    expect(set.stderr).toBe("");
    expect(set.stdout).toBe("Set GENERIC credential api.\n");
    const files = await as("alice", ["credential", "set", "files", "--type", "generic", "--payload", `key=${ALICE_FILE_SECRET}`]);
    expect(files.code, files.stderr).toBe(0);
    const before = JSON.parse((await as("alice", ["credential", "list", "--output", "json"])).stdout) as {
      credentials: Array<{ name: string; type: string; keys: string[]; created: string; updated: string }>;
    };
    expect(before.credentials.map((c) => [c.name, c.type, c.keys])).toEqual([
      ["api", "GENERIC", ["token", "user"]],
      ["files", "GENERIC", ["key"]],
    ]);
    const table = await as("alice", ["credential", "list"]);
    expect(table.stdout).toMatch(/^NAME\s+TYPE\s+KEYS\s+PROFILE\s+CREATED\s+UPDATED\napi\s+GENERIC\s+token,user\s+-\s+\d{4}-/);

    // Bob sees none of alice's, cannot delete hers, and a credential of the same name is his own.
    expect((await as("bob", ["credential", "list"])).stdout).toMatch(/^No credentials\./);
    const deleted = await as("bob", ["credential", "delete", "api"]);
    expect(deleted.code).toBe(1);
    expect(deleted.stderr).toContain("E_NO_CREDENTIAL: there is no credential `api`");
    const bobs = await as("bob", ["credential", "set", "api", "--type", "generic", "--payload", `token=${BOB_SECRET}`]);
    expect(bobs.code, bobs.stderr).toBe(0);
    const after = JSON.parse((await as("alice", ["credential", "list", "--output", "json"])).stdout) as typeof before;
    expect(after).toEqual(before);
    expect(JSON.parse((await as("bob", ["credential", "list", "--output", "json"])).stdout).credentials).toHaveLength(1);

    // --local: the client's own home, not the server.
    expect((await as("alice", ["credential", "list", "--local"])).stdout).toMatch(/^No credentials\./);
    const local = await as("alice", ["credential", "set", "mine", "--local", "--payload", "k=v"]);
    expect(local.code, local.stderr).toBe(0);
    expect(fs.existsSync(path.join(home.home, "client-alice", "credential.key"))).toBe(true);
    expect((await as("alice", ["credential", "list"])).stdout).not.toContain("mine");

    // The server checks what it is sent as the client does, and refuses anyone without a token.
    const bad = await as("alice", ["credential", "set", "s3", "--type", "data", "--payload", "endpoint=s3://b"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("E_CREDENTIAL_PAYLOAD: a DATA credential needs `access_key_id`, `access_key`");
    expect((await api(undefined, "GET", "/api/credentials")).status).toBe(401);
    expect((await api(undefined, "DELETE", "/api/credentials/api")).status).toBe(401);

    // The key is the server's, outside the database, made 0600.
    expect(fs.statSync(path.join(serverHome, "credential.key")).mode & 0o777).toBe(0o600);
  });

  it("a run uses its owner's credentials (env and files), masked in its log; another's run gets theirs", async () => {
    // Bob needs a `files` credential too for the same workflow: his own value.
    const bobFile = `bob-file-${random(8)}`;
    expect((await as("bob", ["credential", "set", "files", "--payload", `key=${bobFile}`])).code).toBe(0);
    const runs: Record<string, string> = {};
    for (const user of ["alice", "bob"]) {
      const submitted = await as(user, ["workflow", "submit", workflow(`cred-${user}`), "--wait"], 90_000);
      expect(submitted.code, submitted.stdout + submitted.stderr).toBe(0);
      runs[user] = new RegExp(`cred-${user}-\\d+`).exec(submitted.stdout + submitted.stderr)![0];
      expect(submitted.stdout).toContain("token=[MASKED]");
      expect(submitted.stdout).not.toContain(user === "alice" ? ALICE_SECRET : BOB_SECRET);
    }
    const logs = async (user: string) => (await as(user, ["workflow", "logs", runs[user]!])).stdout;
    const aliceLog = await logs("alice");
    expect(aliceLog).toContain("token=[MASKED]");
    expect(aliceLog).toContain(`digest=${digest(ALICE_SECRET)}`);
    expect(aliceLog).toContain(`file-digest=${digest(ALICE_FILE_SECRET)}`);
    const bobLog = await logs("bob");
    expect(bobLog).toContain(`digest=${digest(BOB_SECRET)}`);
    expect(bobLog).toContain(`file-digest=${digest(bobFile)}`);

    // Nothing the API answers about the runs holds a secret: record, events, spec, logs, error logs.
    for (const user of ["alice", "bob"])
      for (const route of ["", "/events", "/spec", "/logs?task=t", "/error_logs", "/stream"]) {
        const answer = await api(user, "GET", `/api/workflow/${runs[user]}${route}`);
        expect(answer.status, route).toBe(200);
        for (const secret of [ALICE_SECRET, BOB_SECRET, ALICE_FILE_SECRET, bobFile]) expect(answer.text, route).not.toContain(secret);
      }
  });

  it("a run naming a credential its owner does not have is refused at submit, naming task and credential", async () => {
    const refused = await as("carol", ["workflow", "submit", workflow("cred-carol")]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("task `t`: credential `api` does not exist");
    // A dry run (`workflow validate`) refuses what the submission would.
    const validated = await as("carol", ["workflow", "validate", workflow("cred-carol")]);
    expect(validated.code, validated.stdout).toBe(2);
    expect(validated.stderr).toContain("task `t`: credential `api` does not exist");
    // Only her own are looked at: alice's `api` is not hers to use. Nothing was recorded.
    const listed = JSON.parse((await as("carol", ["workflow", "list", "--output", "json"])).stdout) as unknown[];
    expect(listed).toEqual([]);
    // A key her credential lacks is named too.
    expect((await as("carol", ["credential", "set", "api", "--payload", "other=x"])).code).toBe(0);
    expect((await as("carol", ["credential", "set", "files", "--payload", "key=x"])).code).toBe(0);
    const noKey = await as("carol", ["workflow", "submit", workflow("cred-carol")]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("credential `api` has no key `token` (for API_TOKEN); its keys: other");
  });

  it("no secret is in any file of the server's home (database, server log, run logs), only sealed", async () => {
    const stored = everyFile(serverHome);
    expect(stored.length).toBeGreaterThan(0);
    for (const secret of [ALICE_SECRET, BOB_SECRET, ALICE_FILE_SECRET]) expect(stored.includes(Buffer.from(secret)), secret).toBe(false);
    // The server's log did see the requests (so the check above looked where the requests were logged).
    expect(fs.readFileSync(path.join(serverHome, "server.log"), "utf8")).toContain('"url":"/api/credentials/api"');
  });
});

describe("credentials of a run a restarted server resumes", () => {
  let resumeHome: string;
  let resumed: StartedServer | undefined;
  const sleepers = sleepMarkers(16);

  afterAll(async () => {
    await resumed?.stop();
    sleepers.killAll();
  });

  it("are opened again, the owner's: a run still waiting when the server was SIGKILLed gets them once resumed", async () => {
    resumeHome = home.outsideTmp();
    const config = path.join(resumeHome, "pools.yaml");
    // One task at a time: alice's credential run waits behind her plain one.
    fs.writeFileSync(config, "pools:\n- name: default\n  runtime: host\n  isolation: none\n  max_parallel: 1\n");
    const created = await troupe(["server", "token", "create", "alice", "--home", resumeHome], { home: home.home });
    const token = created.stdout.trim();
    resumed = await startServer(resumeHome, ["--config", config]);
    const client = (args: string[]) =>
      troupe(args, {
        home: path.join(home.home, "client-resume"),
        env: { TROUPE_SERVER: resumed!.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: path.join(home.home, "xdg") },
        timeoutMs: 60_000,
      });
    expect((await client(["credential", "set", "api", "--payload", `token=${ALICE_SECRET}`])).code).toBe(0);
    expect((await client(["credential", "set", "files", "--payload", `key=${ALICE_FILE_SECRET}`])).code).toBe(0);
    const blocker = home.spec(
      "blocker",
      `workflow:\n  name: blocker\n  tasks:\n  - {name: nap, image: alpine:3.18, command: [sleep, "${sleepers.sleep(4)}"]}\n`,
    );
    const gone =
      "workflow:\n  name: cred-gone\n  tasks:\n  - {name: t, image: alpine:3.18, command: [true], credentials: {temp: {T: token}}}\n";
    const idOf = (out: string, name: string) => new RegExp(`${name}-\\d+`).exec(out)![0];
    const first = await client(["workflow", "submit", blocker]);
    expect(first.code, first.stderr).toBe(0);
    const second = await client(["workflow", "submit", workflow("cred-resume")]);
    expect(second.code, second.stderr).toBe(0);
    const id = idOf(second.stdout + second.stderr, "cred-resume");
    const blockerId = idOf(first.stdout + first.stderr, "blocker");
    const status = async (run: string) =>
      (JSON.parse((await client(["workflow", "query", run, "--output", "json"])).stdout) as { status: string }).status;
    for (let i = 0; i < 100 && (await status(blockerId)) !== "RUNNING"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    // Its run has started, its task not: it waits for the pool's one slot.
    const waiting = JSON.parse((await client(["workflow", "query", id, "--output", "json"])).stdout) as {
      groups: Array<{ tasks: Array<{ status: string }> }>;
    };
    expect(waiting.groups[0]!.tasks[0]!.status).toMatch(/^(WAITING|SCHEDULING)$/);
    // A third run, waiting too, whose credential its owner deletes before the restart: it cannot be resumed.
    expect((await client(["credential", "set", "temp", "--payload", "token=temporary-value"])).code).toBe(0);
    const third = await client(["workflow", "submit", home.spec("gone", gone)]);
    expect(third.code, third.stderr).toBe(0);
    const goneId = idOf(third.stdout + third.stderr, "cred-gone");
    expect((await client(["credential", "delete", "temp"])).code).toBe(0);

    const exited = new Promise((resolve) => resumed!.child.once("exit", resolve));
    resumed.child.kill("SIGKILL");
    await exited;
    resumed = await startServer(resumeHome, ["--config", config]);
    const wait = await client(["workflow", "query", id]);
    expect(wait.code, wait.stderr).toBe(0);
    for (let i = 0; i < 300 && /RUNNING|PENDING/.test(await status(id)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await status(id)).toBe("COMPLETED");
    const log = (await client(["workflow", "logs", id])).stdout;
    expect(log).toContain("token=[MASKED]");
    expect(log).toContain(`digest=${digest(ALICE_SECRET)}`);
    expect(log).toContain(`file-digest=${digest(ALICE_FILE_SECRET)}`);
    expect((await client(["workflow", "events", id])).stdout).toContain("the server restarted: run resumed");
    const settled = JSON.parse((await client(["workflow", "query", goneId, "--output", "json"])).stdout) as { status: string };
    expect(settled.status).toBe("FAILED_SERVER_ERROR");
    expect((await client(["workflow", "events", goneId])).stdout).toContain(
      "the server restarted and could not resume the run: task `t`: credential `temp` does not exist",
    );
  }, 120_000);
});
