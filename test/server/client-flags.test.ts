/**
 * Acceptance: OSMO's verbs and flags in the server's client, against a real
 * `troupe server` on loopback (its default pool retries once) with real CLI
 * processes: --set-env (on submit and on `troupe run`), submitting a
 * workflow's id again, cancel of several ids with --message, query
 * --verbose, tags, spec --template, and the list's filters and table.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, sleepMarkers, troupe, type RunRecord } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
const tokens: Record<string, string> = {};
const sleepers = sleepMarkers(14);

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  for (const name of ["alice", "bob"])
    tokens[name] = (await troupe(["server", "token", "create", name, "--home", serverHome], { home: home.home })).stdout.trim();
  const config = path.join(serverHome, "pools.yaml");
  fs.writeFileSync(config, "pools:\n- name: default\n  runtime: host\n  isolation: none\n  max_retries: 1\n");
  server = await startServer(serverHome, ["--config", config]);
}, 200_000);

afterAll(async () => {
  await server?.stop();
  sleepers.killAll();
  home?.remove();
});

const as = (user: string, args: string[], timeoutMs = 30_000) =>
  troupe(args, {
    home: home.home,
    env: { TROUPE_SERVER: server!.url, TROUPE_TOKEN: tokens[user]!, XDG_CONFIG_HOME: home.outsideTmp() },
    timeoutMs,
  });
const alice = (args: string[], timeoutMs?: number) => as("alice", args, timeoutMs);

async function submitted(user: string, file: string, extra: string[] = []): Promise<string> {
  const result = await as(user, ["workflow", "submit", file, "--wait", "--output", "json", ...extra]);
  expect(result.stderr).not.toMatch(/error E_/);
  return (JSON.parse(result.stdout) as RunRecord).id;
}

const greeter = (name: string) => `workflow:
  name: ${name}
  tasks:
  - name: greet
    image: alpine:3.18
    environment: {GREETING: from-the-spec, WHO: nobody}
    command: ["sh", "-c", "echo $GREETING $WHO $(WHO)"]
`;

describe("--set-env", () => {
  it("sets a variable in every task, over the task's own, on workflow submit (and a resubmission keeps it)", async () => {
    const file = home.spec("greeter", greeter(`greeter-${random()}`));
    const id = await submitted("alice", file, ["--set-env", "GREETING=from-the-client", "--set-env", "WHO=alice"]);
    expect((await alice(["workflow", "logs", id])).stdout).toBe("from-the-client alice alice\n");
    const again = await alice(["workflow", "submit", id, "--wait", "--output", "json"]);
    const second = (JSON.parse(again.stdout) as RunRecord).id;
    expect((await alice(["workflow", "logs", second])).stdout).toBe("from-the-client alice alice\n");
  });

  it("a restart plans the same environment", async () => {
    const file = home.spec(
      "env-restart",
      `workflow:\n  name: env-restart-${random()}\n  tasks:\n  - {name: say, image: alpine:3.18, command: ["sh", "-c", "echo $WHO; exit 1"]}\n`,
    );
    const result = await alice(["workflow", "submit", file, "--wait", "--output", "json", "--set-env", "WHO=carol"]);
    const id = (JSON.parse(result.stdout) as RunRecord).id;
    const restarted = await alice(["workflow", "restart", id, "--wait"]);
    expect(restarted.code).toBe(1);
    expect(restarted.stdout).toMatch(/^say +\| carol$/m);
  });

  it("and on troupe run", async () => {
    const file = home.spec("greeter-local", greeter(`local-${random()}`));
    const run = await troupe(["run", file, "--runtime", "host", "--isolation", "none", "--set-env", "WHO=bob"], { home: home.home });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/greet +\| from-the-spec bob bob\n/);
  });

  it("a name that is no environment variable's, or a value with a token, is bad usage (exit 2) on both, and a 400 from the API", async () => {
    const file = home.spec("greeter-bad", greeter(`bad-${random()}`));
    const local = await troupe(["run", file, "--runtime", "host", "--set-env", "1X=y"], { home: home.home });
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/--set-env: `1X` is no environment variable name/);
    const remote = await alice(["workflow", "submit", file, "--set-env", "A-B=y"]);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toMatch(/body\.set_env\.A-B: environment variable `A-B`/);
    expect((await alice(["workflow", "submit", file, "--set-env", "novalue"])).code).toBe(2);
    // The spec's tokens are validated with the spec; a value from outside it may hold none.
    const token = await troupe(["run", file, "--runtime", "host", "--set-env", "X={{host:nope}}"], { home: home.home });
    expect(token.code).toBe(2);
    expect(token.stderr).toMatch(/the value of X has a token \(\{\{host:nope\}\}\)/);
    const remoteToken = await alice(["workflow", "submit", file, "--set-env", "X={{output}}"]);
    expect(remoteToken.code).toBe(2);
    expect(remoteToken.stderr).toMatch(/body\.set_env\.X: the value of X has a token/);
  });
});

describe("workflow submit ID", () => {
  it("submits the spec that workflow ran (rendered) again as a new workflow, with its labels; --set with an id, or a name that is neither, is bad usage", async () => {
    const name = `templated-${random()}`;
    const file = home.spec(
      "templated",
      `workflow:\n  name: ${name}\n  labels: {team: vision}\n  tasks:\n  - {name: t, image: alpine:3.18, command: ["echo", "{{ word }}"]}\ndefault-values:\n  word: hello\n`,
    );
    const first = await submitted("alice", file, ["--set", "word=bonjour", "--label", "ticket=T-1"]);
    const again = await as("bob", ["workflow", "submit", first, "--wait", "--label", "ticket=T-2"]);
    expect(again.code, again.stderr).toBe(0);
    const second = /^submitted (\S+) \(the spec of (\S+) again\)/.exec(again.stdout)!;
    expect(second[2]).toBe(first);
    expect(second[1]).not.toBe(first);
    const record = JSON.parse((await alice(["workflow", "query", second[1]!, "--output", "json"])).stdout) as RunRecord &
      Record<string, unknown>;
    expect(record).toMatchObject({ name, user: "bob", pool: "default", labels: { team: "vision", ticket: "T-2" } });
    expect((await alice(["workflow", "logs", second[1]!])).stdout).toBe("bonjour\n");

    const withSet = await alice(["workflow", "submit", first, "--set", "word=x"]);
    expect(withSet.code).toBe(2);
    expect(withSet.stderr).toMatch(/runs its spec as rendered, so --set cannot be given/);
    const neither = await alice(["workflow", "submit", `nosuch-${random()}`]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/no such file, nor a workflow on the server/);
  });

  it("workflow spec shows the spec after templating; --template as it was written", async () => {
    const file = home.spec(
      "spec",
      `workflow:\n  name: spec-${random()}\n  tasks:\n  - {name: t, image: alpine:3.18, command: ["echo", "{{ word }}"]}\ndefault-values:\n  word: hello\n`,
    );
    const id = await submitted("alice", file);
    expect((await alice(["workflow", "spec", id, "--template"])).stdout).toBe(fs.readFileSync(file, "utf8"));
    const rendered = (await alice(["workflow", "spec", id])).stdout;
    expect(rendered).toMatch(/- echo\n\s+- hello\n/);
    expect(rendered).not.toMatch(/\{\{/);
  });
});

describe("workflow cancel ID... --message", () => {
  it("cancels every workflow given, recording the message as the reason; one that cannot be canceled is said and exits 2", async () => {
    const sleeper = () =>
      home.spec(
        "sleeper",
        `workflow:\n  name: nap-${random()}\n  tasks:\n  - {name: nap, image: alpine:3.18, command: ["sleep", "${sleepers.sleep(1000)}"]}\n`,
      );
    const ids = [];
    for (let i = 0; i < 2; i++)
      ids.push((JSON.parse((await alice(["workflow", "submit", sleeper(), "--output", "json"])).stdout) as { id: string }).id);
    const ended = await submitted(
      "alice",
      home.spec("quick", `workflow:\n  name: quick-${random()}\n  tasks:\n  - {name: q, image: alpine:3.18, command: ["true"]}\n`),
    );
    const result = await alice(["workflow", "cancel", ...ids, ended, "--message", "wrong dataset"]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe(ids.map((id) => `canceling ${id}\n`).join(""));
    expect(result.stderr).toMatch(new RegExp(`cannot cancel ${ended}: workflow ${ended} is not running \\(COMPLETED\\)`));
    for (const id of ids) {
      let events: Array<{ task: string | null; to: string; reason: string }> = [];
      for (let i = 0; i < 100 && !events.some((e) => e.task === null && e.to === "FAILED_CANCELED"); i++) {
        events = JSON.parse((await alice(["workflow", "events", id, "--output", "json"])).stdout) as typeof events;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(events).toContainEqual(
        expect.objectContaining({ task: "nap", to: "FAILED_CANCELED", reason: "canceled: wrong dataset (by alice)" }),
      );
    }
  });
});

describe("workflow query --verbose", () => {
  it("lists every attempt of every task", async () => {
    const file = home.spec(
      "retried",
      `workflow:\n  name: retried-${random()}\n  tasks:\n  - name: flaky\n    image: alpine:3.18\n    command: ["sh", "-c", "exit 7"]\n    exitActions: {RESCHEDULE: "7"}\n`,
    );
    const id = await submitted("alice", file);
    const json = JSON.parse((await alice(["workflow", "query", id, "--verbose", "--output", "json"])).stdout) as {
      groups: Array<{ tasks: Array<{ retry_id: number; attempts: Array<{ retry_id: number; status: string; exit_code: number }> }> }>;
    };
    const task = json.groups[0]!.tasks[0]!;
    expect(task.retry_id).toBe(1);
    expect(task.attempts.map((a) => [a.retry_id, a.status, a.exit_code])).toEqual([
      [0, "RESCHEDULED", 7],
      [1, "FAILED", 7],
    ]);
    const table = (await alice(["workflow", "query", id, "--verbose"])).stdout;
    expect(table).toMatch(/^TASK +GROUP +RETRY +STATUS +EXIT +START +END$/m);
    expect(table).toMatch(/^flaky +flaky-group +0 +RESCHEDULED +7 /m);
    expect(table).toMatch(/^flaky +flaky-group +1 +FAILED +7 /m);
    expect((await alice(["workflow", "query", id])).stdout).not.toMatch(/RESCHEDULED/);
  });
});

describe("workflow list and tag", () => {
  const batch = `b${random()}`;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    const quick = (name: string) =>
      home.spec(name, `workflow:\n  name: ${name}-${batch}\n  tasks:\n  - {name: q, image: alpine:3.18, command: ["true"]}\n`);
    const labels = (...pairs: string[]) => pairs.flatMap((p) => ["--label", p]);
    ids.sim = await submitted("alice", quick("sim"), labels(`batch=${batch}`, "project=sim_a"));
    ids.hil = await submitted("alice", quick("hil"), labels(`batch=${batch}`, "project=hil_b", "ticket=T-1"));
    ids.plain = await submitted("alice", quick("plain"), labels(`batch=${batch}`));
    ids.bobs = await submitted("bob", quick("bobs"), labels(`batch=${batch}`, "project=sim_c"));
  }, 60_000);

  const listed = async (args: string[], user = "alice") => {
    const result = await as(user, ["workflow", "list", "--label", `batch=${batch}`, ...args]);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout
      .trimEnd()
      .split("\n")
      .slice(1)
      .map((line) => Object.keys(ids).find((k) => line.startsWith(`${ids[k]} `)));
  };

  it("prints a header and aligned columns, `1 task`, the latest at the bottom (--order desc: at the top)", async () => {
    const out = (await alice(["workflow", "list", "--label", `batch=${batch}`])).stdout;
    const [header, ...rows] = out.trimEnd().split("\n");
    expect(header).toMatch(/^ID +STATUS +SUBMITTED +USER +POOL +PRIORITY +TASKS +LABELS +TAGS$/);
    for (const row of rows) {
      expect(row.indexOf("COMPLETED")).toBe(header!.indexOf("STATUS"));
      expect(row.slice(header!.indexOf("TASKS"))).toMatch(/^1 task +/);
    }
    expect(await listed([])).toEqual(["sim", "hil", "plain"]);
    expect(await listed(["--order", "desc"])).toEqual(["plain", "hil", "sim"]);
  });

  it("shows the caller's own by default; --user, --all-users for others' (not both)", async () => {
    expect(await listed([], "bob")).toEqual(["bobs"]);
    expect(await listed(["--user", "bob"])).toEqual(["bobs"]);
    expect(await listed(["--all-users"])).toEqual(["sim", "hil", "plain", "bobs"]);
    expect(await listed(["--user", "alice", "--user", "bob"])).toEqual(["sim", "hil", "plain", "bobs"]);
    const both = await alice(["workflow", "list", "--user", "bob", "--all-users"]);
    expect(both.code).toBe(2);
  });

  it("--limit, --offset: the newest first, a page further on", async () => {
    expect(await listed(["--limit", "2"])).toEqual(["hil", "plain"]);
    expect(await listed(["--limit", "1", "--offset", "1"])).toEqual(["hil"]);
    expect(await listed(["--limit", "2", "--offset", "2", "--order", "desc"])).toEqual(["sim"]);
  });

  it("label selectors with * and (a|b), --no-label", async () => {
    expect(await listed(["--label", "project=(sim_*|hil_*)"])).toEqual(["sim", "hil"]);
    expect(await listed(["--label", "project=(sim_*|hil_*)", "--all-users"])).toEqual(["sim", "hil", "bobs"]);
    expect(await listed(["--label", "project=sim_*", "--all-users"])).toEqual(["sim", "bobs"]);
    expect(await listed(["--label", "project=*_(a|b)"])).toEqual(["sim", "hil"]);
    expect(await listed(["--label", "project"])).toEqual(["sim", "hil"]);
    expect(await listed(["--no-label", "ticket"])).toEqual(["sim", "plain"]);
    expect(await listed(["--no-label", "ticket", "--no-label", "project"])).toEqual(["plain"]);
    for (const bad of ["project=(a|", "project=(a)", "project=a b", "pro ject=a"]) {
      const refused = await alice(["workflow", "list", "--label", bad]);
      expect(refused.code, bad).toBe(2);
      expect(refused.stderr, bad).toMatch(/querystring\.label\.0: label (selector|key)/);
    }
  });

  it("--submitted-after / --submitted-before take days; an empty list says what it was filtered by", async () => {
    const day = (offset: number) => {
      const d = new Date(Date.now() + offset * 86_400_000);
      return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
    };
    expect(await listed(["--submitted-after", day(0)])).toEqual(["sim", "hil", "plain"]);
    expect(await listed(["--submitted-before", day(1), "--submitted-after", day(-1)])).toEqual(["sim", "hil", "plain"]);
    const none = await alice(["workflow", "list", "--label", `batch=${batch}`, "--submitted-after", day(1)]);
    expect(none.stdout).toBe(
      `no workflows match: submitted by you (--all-users: by anyone), label batch=${batch}, submitted on or after ${day(1)}\n`,
    );
    for (const bad of [
      ["--submitted-after", "2026-13-01"],
      ["--submitted-before", "yesterday"],
      ["--submitted-after", day(1), "--submitted-before", day(0)],
    ]) {
      const refused = await alice(["workflow", "list", ...bad]);
      expect(refused.code, bad.join(" ")).toBe(2);
    }
  });

  it("workflow tag adds and removes tags (only the submitter's or an admin's), list --tags filters on them, tag alone lists them", async () => {
    const tag = await alice([
      "workflow",
      "tag",
      "--workflow",
      ids.sim!,
      "--workflow",
      ids.hil!,
      "--add",
      `paper${batch}`,
      "--add",
      "draft",
    ]);
    expect(tag.code, tag.stderr).toBe(0);
    expect(tag.stdout).toBe(`${ids.sim}: paper${batch}, draft\n${ids.hil}: paper${batch}, draft\n`);
    expect((await alice(["workflow", "tag", "-w", ids.hil!, "--remove", `paper${batch}`])).stdout).toBe(`${ids.hil}: draft\n`);
    expect(await listed(["--tags", `paper${batch}`])).toEqual(["sim"]);
    expect(await listed(["--tags", `paper${batch}`, "--tags", "draft"])).toEqual(["sim", "hil"]);
    expect((await alice(["workflow", "list", "--label", `batch=${batch}`, "--tags", "draft"])).stdout).toMatch(/ draft\n/);
    const forbidden = await as("bob", ["workflow", "tag", "-w", ids.sim!, "--add", "mine"]);
    expect(forbidden.code).toBe(2);
    expect(forbidden.stderr).toMatch(/only they or an admin can tag it/);
    expect((await alice(["workflow", "tag"])).stdout).toMatch(new RegExp(`^tags in use:\n(- .*\n)*- paper${batch}\n`));
    expect((await alice(["workflow", "tag", "--add", "x"])).code).toBe(2);
    expect((await alice(["workflow", "tag", "-w", ids.sim!])).code).toBe(2);
    expect((await alice(["workflow", "tag", "-w", ids.sim!, "--add", "not a tag"])).code).toBe(2);
  });
});
