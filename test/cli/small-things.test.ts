/**
 * The smaller things a new user hit: sizes shown in sensible units, an
 * unknown pool answered with the pools there are, `troupe login` keeping its
 * file where TROUPE_HOME (or XDG_CONFIG_HOME) says, the server's config file
 * documented with an example that loads, and docs/spec.md naming every field
 * of the format.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatBytes } from "../../src/util/units.js";
import { POOL_FIELDS, readServerConfig } from "../../src/cli/server-config.js";
import { FAILURE_STATUSES, PlatformExitCode, TaskStatus, WorkflowStatus } from "../../src/engine/statuses.js";
import { workflowJsonSchema } from "../../src/spec/index.js";
import { NOT_IMPLEMENTED } from "../../src/spec/rules/not-implemented.js";
import { ensureBuilt, ROOT, TestHome, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const EXAMPLE_CONFIG = path.join(ROOT, "examples", "server-config.yaml");

let home: TestHome;
beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);
afterAll(() => home?.remove());

describe("sizes in human units", () => {
  it.each([
    [Math.round(24105.2 * MiB), "23.5Gi"],
    [512 * MiB, "512Mi"],
    [1.25 * GiB, "1.25Gi"],
    [16 * GiB, "16Gi"],
    [2 * 1024 * GiB, "2Ti"],
    [1536, "1.5Ki"],
    [1023, "1023B"],
    [0, "0B"],
    [Math.round(1023.99 * MiB), "1Gi"],
  ])("%d bytes is %s", (bytes, shown) => {
    expect(formatBytes(bytes)).toBe(shown);
  });

  it("troupe run says what the pool has in them", async () => {
    const file = home.spec(
      "huge",
      "workflow:\n  name: huge\n  resources:\n    default: {memory: 100Ti}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n",
    );
    const result = await troupe(["run", file, "--memory", "24105.2Mi"], { home: home.home });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("memory 100Ti at once");
    expect(result.stderr).toMatch(/the pool has cpu \d+, gpu \d+, memory 23\.5Gi/);
  });
});

describe("the server's config file", () => {
  it("examples/server-config.yaml loads, with every field a pool may have", () => {
    const pools = readServerConfig(EXAMPLE_CONFIG);
    expect(pools.map((p) => p.name)).toEqual(["default", "containers"]);
    expect(pools[0]).toMatchObject({ runtime: "host", cpus: 4, memory: "8Gi", max_retries: 1, exit_actions: { RESCHEDULE: "137" } });
    const text = fs.readFileSync(EXAMPLE_CONFIG, "utf8");
    for (const field of POOL_FIELDS) expect(text, field).toMatch(new RegExp(`^\\s*(# )?(- )?${field}:`, "m"));
  });

  it("`troupe server --help` documents every field (no source file to read), with an example", async () => {
    const help = (await troupe(["server", "--help"], { home: home.home })).stdout;
    expect(help).not.toMatch(/src\/|\.ts\b/);
    for (const field of POOL_FIELDS) expect(help, field).toContain(`${field}:`);
    expect(help).toContain("--config examples/server-config.yaml");
  });

  it("README.md names every field and the example", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    for (const field of POOL_FIELDS) expect(readme, field).toContain(`\`${field}\``);
    expect(readme).toContain("examples/server-config.yaml");
  });
});

describe("with a server running examples/server-config.yaml", () => {
  let server: StartedServer | undefined;
  let token: string;
  let serverHome: string;

  beforeAll(async () => {
    serverHome = home.outsideTmp();
    token = (await troupe(["server", "token", "create", "dana", "--home", serverHome], { home: home.home })).stdout.trim();
    server = await startServer(serverHome, ["--config", EXAMPLE_CONFIG]);
  }, 60_000);
  afterAll(async () => server?.stop());

  const client = (args: string[], env: Record<string, string | undefined> = {}) =>
    troupe(args, { home: home.home, env: { TROUPE_SERVER: server!.url, TROUPE_TOKEN: token, ...env }, timeoutMs: 30_000 });

  it("an unknown pool is answered with the pools there are, and the likely one", async () => {
    const file = home.spec("tiny", "workflow:\n  name: tiny\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n");
    for (const verb of ["submit", "validate"]) {
      const result = await client(["workflow", verb, file, "--pool", "defualt"]);
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.stderr).toContain("no pool named defualt (did you mean `default`?); this server's pools: containers, default");
    }
    const valid = await client(["workflow", "validate", file, "--pool", "default"]);
    expect(valid.code, valid.stderr).toBe(0);
  });

  it("a workflow too big for the pool is refused with sizes in human units", async () => {
    const file = home.spec(
      "huge",
      "workflow:\n  name: huge\n  resources:\n    default: {memory: 100Ti}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n",
    );
    const result = await client(["workflow", "validate", file, "--pool", "default"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("needs more than the pool default has (cpu 0 of 4, gpu 0 of 0, memory 100Ti of 8Gi)");
  });

  it("troupe login keeps the server and token in $TROUPE_HOME/client.json, readable only by its user", async () => {
    const troupeHome = path.join(home.home, "login-home");
    const xdg = path.join(home.home, "xdg");
    const env = { TROUPE_HOME: troupeHome, XDG_CONFIG_HOME: xdg, TROUPE_SERVER: undefined, TROUPE_TOKEN: undefined };
    const login = await client(["login", server!.url, "--token", token], env);
    expect(login.code, login.stderr).toBe(0);
    const saved = path.join(troupeHome, "client.json");
    expect(login.stdout).toContain(`saved in ${saved}`);
    expect(JSON.parse(fs.readFileSync(saved, "utf8"))).toEqual({ server: server!.url, token });
    expect(fs.statSync(saved).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(xdg)).toBe(false);
    // The workflow commands read it from there.
    const list = await client(["workflow", "list"], env);
    expect(list.code, list.stderr).toBe(0);
  });

  it("without TROUPE_HOME, in $XDG_CONFIG_HOME/troupe/client.json", async () => {
    const xdg = path.join(home.home, "xdg-only");
    const env = { TROUPE_HOME: undefined, XDG_CONFIG_HOME: xdg, TROUPE_SERVER: undefined, TROUPE_TOKEN: undefined };
    const login = await client(["login", server!.url, "--token", token], env);
    expect(login.code, login.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(xdg, "troupe", "client.json"), "utf8"))).toMatchObject({ server: server!.url });
  });

  it("troupe login --help says where, with an example", async () => {
    const help = (await troupe(["login", "--help"], { home: home.home })).stdout;
    expect(help).toContain("$TROUPE_HOME/client.json");
    expect(help).toContain("$XDG_CONFIG_HOME/troupe/client.json");
    expect(help).toMatch(/Example:\n\s+\$ troupe login http/);
  });
});

describe("docs/spec.md, the workflow format as troupe implements it", () => {
  const doc = fs.readFileSync(path.join(ROOT, "docs", "spec.md"), "utf8");

  it("names every field of the schema", () => {
    const fields = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (typeof node === "object" && node !== null) {
        for (const [key, value] of Object.entries(node)) {
          if (key === "properties" && typeof value === "object" && value !== null)
            for (const field of Object.keys(value)) fields.add(field);
          walk(value);
        }
      }
    };
    walk(workflowJsonSchema());
    expect(fields.size).toBeGreaterThan(40);
    const missing = [...fields].filter((field) => !doc.includes(`\`${field}\``));
    expect(missing).toEqual([]);
  });

  it("lists every field accepted but not implemented, as the rule does", () => {
    const section = doc.slice(doc.indexOf("## Not yet implemented"));
    for (const entry of NOT_IMPLEMENTED) {
      const label = entry.label.includes("`") ? entry.label : `\`${entry.label}\``;
      expect(section, entry.label).toContain(`| ${label} |`);
    }
    const rows = section.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| field") && !l.startsWith("|---"));
    expect(rows).toHaveLength(NOT_IMPLEMENTED.length);
  });

  it("names every status, every platform exit code, every token and the README links to it", () => {
    for (const status of [...Object.keys(TaskStatus), ...Object.keys(WorkflowStatus), ...FAILURE_STATUSES])
      expect(doc, status).toContain(`\`${status}\``);
    for (const code of Object.values(PlatformExitCode)) expect(doc, String(code)).toContain(`| ${code} |`);
    for (const token of ["{{output}}", "{{input:N}}", "{{input:NAME}}", "{{host:TASK}}", "{{workflow_id}}"]) expect(doc).toContain(token);
    expect(fs.readFileSync(path.join(ROOT, "README.md"), "utf8")).toContain("(docs/spec.md)");
  });
});
