/**
 * Acceptance: a first run that works (issue 12), with the real CLI, real
 * podman and a real server.
 * - The engine is asked once whether it can start a container: where it
 *   cannot (an OCI runtime of this test's that refuses every container, and
 *   this machine's own podman without its containers.conf), an automatic
 *   choice runs on the host runtime saying why in one line, `--runtime
 *   container` fails at once (exit 2), a server pool too at the server's
 *   start; the answer is kept per engine configuration, so the next run
 *   starts no container for it, and a changed configuration is asked again.
 * - Every image is made ready as the run starts: a missing one fails its
 *   group (and what depends on it) while the upstream work still runs.
 * - Paths relative to where troupe runs, in podman's environment
 *   (CONTAINERS_CONF=scripts/ci-containers.conf), work for runs and servers.
 *
 * Needs the images of scripts/test-images.sh (scripts/test.sh makes them).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startServer, type StartedServer } from "../server/helpers.js";
import {
  BIN,
  EXAMPLES,
  ROOT,
  TestHome,
  describeRun,
  ensureBuilt,
  killStartedRuns,
  ms,
  podmanList,
  processesWith,
  random,
  removeRunLeftovers,
  runJson,
  taskOf,
  troupe,
  waitFor,
  type TroupeResult,
} from "./helpers.js";

/** podman as these machines need it (scripts/test.sh exports it; the tests here set it themselves). */
const WORKING_CONF = path.join(ROOT, "scripts", "ci-containers.conf");
/** Neither docker (none answers there) nor an asked runtime: the automatic choice is podman's to pass or fail. */
const AUTOMATIC = { TROUPE_RUNTIME: undefined, DOCKER_HOST: "unix:///nonexistent/docker.sock" };

const homes: TestHome[] = [];
const servers: StartedServer[] = [];
const runIds = new Set<string>();
let scratch: TestHome;

beforeAll(async () => {
  await ensureBuilt();
  scratch = newHome();
}, 200_000);

afterEach(async () => {
  killStartedRuns();
  for (const server of servers.splice(0)) await server.stop();
  removeRunLeftovers(runIds);
  runIds.clear();
});

afterAll(() => homes.forEach((h) => h.remove()));

function newHome(): TestHome {
  const h = new TestHome();
  homes.push(h);
  return h;
}

/**
 * A containers.conf like the working one, whose OCI runtime is a script of
 * this test's that refuses every container (on any machine) and logs each
 * call; `calls()` counts the containers podman tried to create with it.
 */
function refusingEngine(h: TestHome): { conf: string; creates: () => number; reason: string } {
  const dir = h.outsideTmp();
  const log = path.join(dir, "calls.log");
  const reason = `fake-runc ${random()}: this OCI runtime refuses every container`;
  const runtime = path.join(dir, "fake-runc");
  fs.writeFileSync(runtime, `#!/bin/sh\necho "$1" >> ${log}\necho "${reason}" >&2\nexit 1\n`, { mode: 0o755 });
  const conf = path.join(dir, "containers.conf");
  const working = fs.readFileSync(WORKING_CONF, "utf8");
  fs.writeFileSync(conf, `${working.replace(/runtime = "runc"/, 'runtime = "refusing"')}\n[engine.runtimes]\nrefusing = ["${runtime}"]\n`);
  const creates = () =>
    fs.existsSync(log)
      ? fs
          .readFileSync(log, "utf8")
          .split("\n")
          .filter((l) => l === "create").length
      : 0;
  return { conf, creates, reason };
}

function tinySpec(h: TestHome, name: string, tasks = 1): string {
  const lines = ["workflow:", `  name: ${name}-${random(3)}`, "  tasks:"];
  for (let i = 0; i < tasks; i++) lines.push(`  - {name: t${i}, image: "alpine:3.18", command: ["sh", "-c", "echo hello from t${i}"]}`);
  return h.spec(name, lines.join("\n") + "\n");
}

const firstLine = (r: TroupeResult) => (r.stdout + r.stderr).split("\n")[0] ?? "";
const linesWith = (text: string, fragment: string) => text.split("\n").filter((line) => line.includes(fragment));

describe("the engine is asked once whether it can start containers", () => {
  it("chosen automatically, an engine that cannot means the host runtime and one line saying why and how to fix it; the answer is kept until the configuration changes", async () => {
    const h = newHome();
    const engine = refusingEngine(h);
    const env = { ...AUTOMATIC, CONTAINERS_CONF: engine.conf };
    const file = tinySpec(h, "refused", 3);

    const first = await troupe(["run", file], { home: h.home, env, timeoutMs: 60_000 });
    expect(first.code, describeRun(first)).toBe(0);
    expect(firstLine(first)).toMatch(/^troupe: run \S+: runtime: host/);
    const notes = linesWith(first.stdout + first.stderr, "cannot start containers");
    expect(notes, first.stdout).toHaveLength(1);
    expect(notes[0]).toMatch(/^troupe: note: podman \S+ \(CLI\) cannot start containers here \(/);
    expect(notes[0]).toContain(engine.reason);
    expect(notes[0]).toContain("tasks run on the host runtime; to use containers, make `podman run --rm IMAGE true` work here");
    // Not a word of the engine's per task: the tasks ran, on the host.
    expect(linesWith(first.stdout + first.stderr, engine.reason)).toHaveLength(1);
    for (let i = 0; i < 3; i++) expect(first.stdout).toMatch(new RegExp(`^t${i} +\\| hello from t${i}$`, "m"));
    expect(engine.creates()).toBe(1);

    // The answer is kept: the next run starts no container to learn it again, and says the same.
    const second = await troupe(["run", file], { home: h.home, env, timeoutMs: 60_000 });
    expect(second.code, describeRun(second)).toBe(0);
    expect(linesWith(second.stdout, "cannot start containers")).toEqual(notes);
    expect(engine.creates()).toBe(1);

    // The configuration changes (the same file, now the working one): asked again, and containers it is.
    fs.copyFileSync(WORKING_CONF, engine.conf);
    const fixed = await runJson(file, { home: h.home, env, timeoutMs: 60_000 });
    runIds.add(fixed.record.id);
    expect(fixed.code, describeRun(fixed)).toBe(0);
    // (--output json: the progress is on stderr.)
    expect(fixed.stderr.split("\n")[0]).toMatch(/^troupe: run \S+: runtime: container, engine: podman/);
    expect(fixed.stderr).not.toContain("cannot start containers");
  }, 150_000);

  it("--runtime container on such an engine fails at once, before any task: exit 2, E_ENGINE_CANNOT_START with the engine's reason", async () => {
    const h = newHome();
    const engine = refusingEngine(h);
    const file = tinySpec(h, "asked", 4);
    const result = await troupe(["run", file, "--runtime", "container"], {
      home: h.home,
      env: { CONTAINERS_CONF: engine.conf },
      timeoutMs: 60_000,
    });
    expect(result.code, describeRun(result)).toBe(2);
    const errors = linesWith(result.stderr, "error");
    expect(errors, result.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^error E_ENGINE_CANNOT_START: the container runtime was asked for, but podman \S+ \(CLI\) cannot start containers here: /,
    );
    expect(errors[0]).toContain(engine.reason);
    expect(errors[0]).toContain("or run with --runtime host");
    expect(result.stdout).toBe("");
    // One container tried (the check), none per task; no run was recorded.
    expect(engine.creates()).toBe(1);
    const list = await troupe(["list"], { home: h.home });
    expect(list.stdout + list.stderr).toMatch(/no runs/);
  }, 90_000);

  it("the Quick start where podman needs configuring first (these machines without their containers.conf) runs on the host, saying why", async () => {
    const h = newHome();
    const result = await troupe(["run", path.join(EXAMPLES, "parallel_tasks.yaml")], {
      home: h.home,
      env: { ...AUTOMATIC, CONTAINERS_CONF: undefined },
      timeoutMs: 60_000,
    });
    expect(result.code, describeRun(result)).toBe(0);
    expect(firstLine(result)).toMatch(/runtime: host/);
    const notes = linesWith(result.stdout, "cannot start containers");
    expect(notes).toHaveLength(1);
    // podman's own reason (runc cannot set the default open-files limit here), and the fix for it.
    expect(notes[0]).toMatch(/rlimit/);
    expect(notes[0]).toContain("default_ulimits");
    expect(result.stdout + result.stderr).not.toMatch(/OCI permission denied.*\n.*OCI permission denied/);
  }, 90_000);

  it("a server pool that asks for containers on such an engine stops the server at its start; an automatic pool says there that it runs on the host", async () => {
    const h = newHome();
    const engine = refusingEngine(h);
    const serverHome = h.outsideTmp();
    const refused = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, "server", "--home", serverHome, "--port", "0", "--runtime", "container"], {
        cwd: ROOT,
        env: { ...process.env, CONTAINERS_CONF: engine.conf },
        stdio: ["ignore", "ignore", "pipe"],
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(
      /^error E_ENGINE_CANNOT_START: pool default: the container runtime was asked for, but .*cannot start containers here: /,
    );
    expect(refused.stderr).toContain(engine.reason);

    const server = await startServer(h.outsideTmp(), [], { DOCKER_HOST: AUTOMATIC.DOCKER_HOST, CONTAINERS_CONF: engine.conf });
    servers.push(server);
    const said = await waitFor(server.out, (out) => /pool default: note: .*cannot start containers/.test(out), 10_000);
    expect(linesWith(said, "cannot start containers")).toHaveLength(1);
    expect(said).toContain(engine.reason);
    expect(said).toContain("tasks run on the host runtime");
  }, 120_000);
});

describe("an engine spoken to through the Docker API is checked too", () => {
  it("podman's Docker API service on a refusing runtime: the host runtime, or E_ENGINE_CANNOT_START with --engine docker; nothing of the check left in the engine", async () => {
    const h = newHome();
    const engine = refusingEngine(h);
    const dir = h.outsideTmp();
    const socket = path.join(dir, "docker.sock");
    // In its own directory: its conmons write files into their working directory.
    // podman's service keeps every image uploaded to it as /var/tmp/api_load.tar*: the check uploads none where an image is.
    const apiLoads = () => new Set(fs.readdirSync("/var/tmp").filter((f) => f.startsWith("api_load.tar")));
    const loadsBefore = apiLoads();
    const service = spawn("podman", ["system", "service", "--time=0", `unix://${socket}`], {
      cwd: dir,
      env: { ...process.env, CONTAINERS_CONF: engine.conf },
      stdio: "ignore",
    });
    try {
      expect(await waitFor(() => fs.existsSync(socket), Boolean, 15_000)).toBe(true);
      const env = { TROUPE_RUNTIME: undefined, DOCKER_HOST: `unix://${socket}`, CONTAINERS_CONF: engine.conf };
      const file = tinySpec(h, "api-refused", 2);
      const automatic = await troupe(["run", file], { home: h.home, env, timeoutMs: 60_000 });
      expect(automatic.code, describeRun(automatic)).toBe(0);
      expect(firstLine(automatic)).toMatch(/runtime: host/);
      const notes = linesWith(automatic.stdout, "cannot start containers");
      expect(notes).toHaveLength(1);
      expect(notes[0]).toMatch(new RegExp(`^troupe: note: docker \\S+ \\(API at unix://${socket}\\) cannot start containers here \\(`));
      expect(notes[0]).toContain(engine.reason);

      const asked = await troupe(["run", file, "--engine", "docker"], { home: h.home, env, timeoutMs: 60_000 });
      expect(asked.code, describeRun(asked)).toBe(2);
      expect(asked.stderr).toMatch(/^error E_ENGINE_CANNOT_START: .*docker \S+ \(API at .*cannot start containers here: /);
      expect(asked.stderr).toContain(engine.reason);
      // Checked once (the answer kept), and its image and container removed.
      expect(engine.creates()).toBe(1);
      expect(podmanList(["images", "--filter", "reference=*troupe-check*", "-q"])).toEqual([]);
      expect(podmanList(["ps", "-a", "--filter", "name=troupe-check-", "-q"])).toEqual([]);
      expect([...apiLoads()].filter((f) => !loadsBefore.has(f))).toEqual([]);
    } finally {
      service.kill("SIGTERM");
    }
  }, 120_000);
});

describe("every image is made ready as the run starts", () => {
  it("an image that cannot be had fails its group at once and its downstream FAILED_UPSTREAM, while the upstream work goes on", async () => {
    const missing = `localhost/troupe-test/missing-${random()}:1`;
    const file = scratch.spec(
      "missing-image",
      `workflow:
  name: missing-image-${random(3)}
  groups:
  - name: first
    tasks:
    - {name: slow, image: "alpine:3.18", command: ["sh", "-c", "sleep 8; echo made > {{output}}/made"]}
  - name: second
    tasks:
    - {name: uses, image: "${missing}", command: ["true"], inputs: [{task: slow}]}
  - name: third
    tasks:
    - {name: after, image: "alpine:3.18", command: ["true"], inputs: [{task: uses}]}
`,
    );
    const run = await runJson(file, { home: scratch.home, target: "container", env: { CONTAINERS_CONF: WORKING_CONF }, timeoutMs: 90_000 });
    runIds.add(run.record.id);
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.record.status).toBe("FAILED_IMAGE_PULL");
    const slow = taskOf(run.record, "slow");
    const uses = taskOf(run.record, "uses");
    const after = taskOf(run.record, "after");
    expect(slow.status).toBe("COMPLETED");
    expect(uses.status).toBe("FAILED_IMAGE_PULL");
    expect(after.status).toBe("FAILED_UPSTREAM");
    // Known while the upstream group still ran (it sleeps 8 s), not at the group's turn.
    expect(ms(uses.end_time), describeRun(run)).toBeLessThan(ms(slow.end_time) - 4_000);
    expect(ms(after.end_time)).toBeLessThan(ms(slow.end_time) - 4_000);
    // With the engine's reason, said as it happened.
    expect(linesWith(run.stderr, "uses").find((l) => l.includes("FAILED_IMAGE_PULL"))).toContain(`cannot pull the image ${missing}`);
  }, 120_000);
});

describe("pulls still going when the run ends", () => {
  it("are given up: troupe ends with its run, not with a pull that hangs", async () => {
    // A registry that takes connections and never answers: podman's pull waits 80 s or so for it.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const file = scratch.spec(
        "hanging-pull",
        `workflow:
  name: hanging-pull-${random(3)}
  groups:
  - name: first
    tasks:
    - {name: fails, image: "alpine:3.18", command: ["sh", "-c", "sleep 2; exit 1"]}
  - name: second
    tasks:
    - {name: never, image: "localhost:${port}/troupe-test/hangs:1", command: ["true"], inputs: [{task: fails}]}
`,
      );
      const run = await runJson(file, {
        home: scratch.home,
        target: "container",
        env: { CONTAINERS_CONF: WORKING_CONF },
        timeoutMs: 60_000,
      });
      runIds.add(run.record.id);
      expect(run.code, describeRun(run)).toBe(1);
      expect(taskOf(run.record, "fails").status).toBe("FAILED");
      expect(taskOf(run.record, "never").status).toBe("FAILED_UPSTREAM");
      // The pull was under way while the first group ran (made ready as the run started) ...
      expect(sockets.length).toBeGreaterThan(0);
      // ... and was given up when the run ended.
      expect(run.wallMs, describeRun(run)).toBeLessThan(30_000);
      expect(
        await waitFor(
          () => processesWith(`localhost:${port}/`),
          (p) => p.length === 0,
          5_000,
        ),
      ).toEqual([]);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 90_000);
});

describe("paths relative to where troupe runs, in the engine's environment", () => {
  // troupe runs in ROOT (the helpers' cwd); podman runs in each attempt's own directory.
  const RELATIVE = { CONTAINERS_CONF: "scripts/ci-containers.conf" };

  it("CONTAINERS_CONF=scripts/ci-containers.conf works for troupe run (bench/README.md's command), groups and single tasks", async () => {
    const file = scratch.spec(
      "relative-conf",
      `workflow:
  name: relative-conf-${random(3)}
  groups:
  - name: pair
    tasks:
    - {name: server, lead: true, image: "alpine:3.18", command: ["sh", "-c", "echo up"]}
    - {name: client, image: "alpine:3.18", command: ["sh", "-c", "echo {{host:server}}"]}
  - name: alone
    tasks:
    - {name: single, image: "alpine:3.18", command: ["true"], inputs: [{task: server}]}
`,
    );
    const run = await runJson(file, { home: scratch.home, target: "container", env: RELATIVE, timeoutMs: 90_000 });
    runIds.add(run.record.id);
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.record.status).toBe("COMPLETED");
  }, 120_000);

  it("and for a server started there", async () => {
    const h = newHome();
    const serverHome = h.outsideTmp();
    const token = (await troupe(["server", "token", "create", "erin", "--home", serverHome], { home: h.home })).stdout.trim();
    const server = await startServer(serverHome, ["--runtime", "container"], RELATIVE);
    servers.push(server);
    const env = { TROUPE_SERVER: server.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: h.outsideTmp() };
    const run = await troupe(["workflow", "submit", tinySpec(h, "relative-server", 2), "--wait", "--output", "json"], {
      home: h.home,
      env,
      timeoutMs: 90_000,
    });
    expect(run.code, run.stderr).toBe(0);
    const record = JSON.parse(run.stdout) as { id: string; status: string };
    runIds.add(record.id);
    expect(record.status).toBe("COMPLETED");
  }, 120_000);
});
