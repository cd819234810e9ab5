/**
 * `credentials:` in tasks, through the built CLI on real runs (issue 15):
 * a credential's keys as environment variables and as files (0400, the
 * task's user's), on the host runtime with each sandbox builder and in
 * podman's containers; every secret value masked in the live output, the
 * log files and `troupe logs`, a secret cut across two writes too; none in
 * the record, the events, troupe's own log or anything under the home; an
 * unknown credential or key refused before the run, naming task and
 * credential.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, IS_ROOT, killStartedRuns, PodmanService, SANDBOX_BUILDERS, TestHome, troupe, type TroupeResult } from "./helpers.js";

const TOKEN = "sk-live-TOKEN-6f1c2a9e0b7d";
const PASSWORD = "correct-horse-battery-staple";
/** Under 8 characters: not masked (OSMO's rule). */
const USER = "alice";

const home = new TestHome();
beforeAll(async () => {
  await ensureBuilt();
  const set = await troupe(
    ["credential", "set", "api", "--type", "generic", "--payload", `token=${TOKEN}`, `password=${PASSWORD}`, `user=${USER}`],
    { home: home.home },
  );
  expect(set.stderr).toBe("");
}, 200_000);
afterAll(() => {
  killStartedRuns();
  home.remove();
});

/** A task that shows its secrets every way it has them: env, files, and the token written in two pieces a moment apart. */
function workflow(image: string): string {
  return home.spec(
    "cred",
    `workflow:
  name: cred
  tasks:
  - name: env-task
    image: ${image}
    command: [sh, -c]
    args:
    - |
      echo "token=$API_TOKEN user=$API_USER"
      printf 'split: ${TOKEN.slice(0, 9)}'; sleep 0.3; printf '${TOKEN.slice(9)} end\\n'
      sleep 1
    credentials:
      api: {API_TOKEN: token, API_USER: user}
  - name: file-task
    image: ${image}
    command: [sh, -c]
    args:
    - |
      echo "password=$(cat /run/api-creds/password)"
      stat -c '%n %a %u' /run/api-creds/token /run/api-creds/user
      id -u
    credentials:
      api: /run/api-creds
`,
  );
}

function expectMasked(text: string, where: string): void {
  expect(text, where).not.toContain(TOKEN);
  expect(text, where).not.toContain(PASSWORD);
  expect(text, where).not.toContain(TOKEN.slice(0, 9) + TOKEN.slice(9, 12));
}

/** Polls every process's command line while `running` lasts: those that showed a secret. */
async function commandLinesWithSecrets<T>(running: Promise<T>): Promise<{ result: T; seen: string[] }> {
  const seen = new Set<string>();
  let done = false;
  void running.finally(() => (done = true));
  while (!done) {
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const line = fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ");
        if (line.includes(TOKEN) || line.includes(PASSWORD)) seen.add(line.slice(0, 200));
      } catch {
        // Gone meanwhile.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { result: await running, seen: [...seen] };
}

/** Every file under the home but the credential key, as bytes (the database, logs, outputs, troupe's log). */
function everythingStored(): Buffer {
  const parts: Buffer[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name !== "credential.key") parts.push(fs.readFileSync(full));
    }
  };
  walk(home.home);
  return Buffer.concat(parts);
}

async function checkRun(result: TroupeResult, runtime: string): Promise<void> {
  expect(result.code, result.stderr + result.stdout).toBe(0);
  const runId = /run (cred-\d+):/.exec(result.stdout)![1]!;
  // The live output: masked, the short value as it is.
  expect(result.stdout).toMatch(/env-task\s+\| token=\[MASKED\] user=alice/);
  expect(result.stdout).toMatch(/env-task\s+\| split: \[MASKED\] end/);
  expect(result.stdout).toMatch(/file-task\s+\| password=\[MASKED\]/);
  expectMasked(result.stdout + result.stderr, "the live output");
  // The log files.
  expect(home.log(runId, "env-task")).toBe("token=[MASKED] user=alice\nsplit: [MASKED] end\n");
  const fileLog = home.log(runId, "file-task");
  expect(fileLog).toContain("password=[MASKED]\n");
  // One file per key, 0400, the task's user's (nobody on the host as root; root in a container).
  const uid = /\n(\d+)\n$/.exec(fileLog)![1]!;
  expect(fileLog).toContain(`/run/api-creds/token 400 ${uid}\n`);
  expect(fileLog).toContain(`/run/api-creds/user 400 ${uid}\n`);
  if (runtime === "host" && IS_ROOT) expect(uid).toBe("65534");
  // `troupe logs`, the record, the events.
  const logs = await troupe(["logs", runId], { home: home.home });
  expect(logs.stdout).toMatch(/env-task\s+\| split: \[MASKED\] end/);
  expectMasked(logs.stdout, "troupe logs");
  const record = await troupe(["query", runId, "--output", "json"], { home: home.home });
  expect(record.code).toBe(0);
  expectMasked(record.stdout, "the record");
  const events = await troupe(["events", runId, "--output", "json"], { home: home.home });
  expect(events.code).toBe(0);
  expectMasked(events.stdout, "the events");
  // Nothing troupe keeps holds them in the clear: the database (spec, record, events), logs, troupe's own log.
  expectMasked(everythingStored().toString("latin1"), "the home's files");
}

describe("credentials: in tasks", () => {
  for (const builder of SANDBOX_BUILDERS)
    it(`host runtime (${builder.name}): env and files given, every secret masked everywhere`, async () => {
      const ownLog = path.join(home.home, `troupe-${builder.name.replace(/\W+/g, "-")}.log`);
      const { result, seen } = await commandLinesWithSecrets(
        troupe(["run", workflow("ubuntu:24.04"), "--runtime", "host", "--log-file", ownLog], {
          home: home.home,
          env: builder.env,
          timeoutMs: 60_000,
        }),
      );
      await checkRun(result, "host");
      // troupe's own sandbox gets the environment through troupe-spawner's pipe, bubblewrap from a file descriptor (--args).
      expect(seen).toEqual([]);
      // That file is gone once bubblewrap has read it (the home's files are looked through below).
      expect(fs.readFileSync(ownLog, "utf8")).toContain("run");
    }, 90_000);

  it("containers (podman's CLI): env (kept off podman's command line) and files given, every secret masked everywhere", async () => {
    const { result, seen } = await commandLinesWithSecrets(
      troupe(["run", workflow("troupe-test/debian"), "--runtime", "container"], { home: home.home, timeoutMs: 120_000 }),
    );
    await checkRun(result, "container");
    expect(seen).toEqual([]);
  }, 150_000);

  it("containers through the Docker Engine API (podman's service): every secret masked everywhere", async () => {
    const service = await PodmanService.start();
    try {
      const result = await troupe(["run", workflow("troupe-test/debian"), "--runtime", "container", "--engine", "docker"], {
        home: home.home,
        env: { DOCKER_HOST: service.url },
        timeoutMs: 120_000,
      });
      await checkRun(result, "container");
    } finally {
      await service.stop();
    }
  }, 150_000);

  it("refuses a credential that does not exist, or a key it does not have, before the run: exit 2, naming task and credential", async () => {
    const unknown = home.spec(
      "unknown",
      `workflow:
  name: unknown
  tasks:
  - name: t
    image: ubuntu:24.04
    command: [env]
    credentials:
      no-such: {X: token}
`,
    );
    const refused = await troupe(["run", unknown, "--runtime", "host"], { home: home.home });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("E_CREDENTIAL_UNKNOWN: task `t`: credential `no-such` does not exist");
    const badKey = home.spec("badkey", fs.readFileSync(unknown, "utf8").replace("no-such: {X: token}", "api: {X: secret}"));
    const refusedKey = await troupe(["run", badKey, "--runtime", "host"], { home: home.home });
    expect(refusedKey.code).toBe(2);
    expect(refusedKey.stderr).toContain(
      "E_CREDENTIAL_PAYLOAD_KEY: task `t`: credential `api` has no key `secret` (for X); its keys: password, token, user",
    );
    // Nothing was recorded for them.
    const list = await troupe(["list"], { home: home.home });
    expect(list.stdout).not.toMatch(/unknown-\d/);
    // `troupe plan` tells the same, from the names and keys alone (no payload opened: no credential key needed).
    const planned = await troupe(["plan", unknown], { home: home.home });
    expect(planned.code).toBe(2);
    expect(planned.stderr).toContain("E_CREDENTIAL_UNKNOWN: task `t`: credential `no-such` does not exist");
    const plannedKey = await troupe(["plan", badKey], { home: home.home });
    expect(plannedKey.code).toBe(2);
    expect(plannedKey.stderr).toContain("E_CREDENTIAL_PAYLOAD_KEY: task `t`: credential `api` has no key `secret`");
    const good = home.spec("good", fs.readFileSync(unknown, "utf8").replace("no-such: {X: token}", "api: {X: token}"));
    const plannedGood = await troupe(["plan", good], {
      home: home.home,
      env: { TROUPE_CREDENTIAL_KEY_FILE: path.join(home.home, "absent.key") },
    });
    expect(plannedGood.stderr).toBe("");
    expect(plannedGood.code).toBe(0);
  }, 60_000);
});
