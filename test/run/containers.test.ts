/**
 * Acceptance: the container runtime (`--runtime container`) with the real CLI
 * and podman: images, pull failures and `--pull`, memory limits, a network per
 * group (names, isolation, egress), the docker engine path through podman's
 * Docker-compatible API, what a run leaves behind (normal end, cancel, SIGKILL
 * and the sweep), and which runtime is the default.
 *
 * The tests run one at a time (they share podman) and need the images of
 * scripts/test-images.sh and, on this kind of machine, CONTAINERS_CONF (see
 * scripts/test.sh).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  EXAMPLES,
  TestHome,
  describeRun,
  ensureBuilt,
  groupOf,
  killStartedRuns,
  processesWith,
  random,
  runJson,
  sleepMarkers,
  taskOf,
  troupe,
  waitFor,
  type RunRecord,
  type TroupeResult,
} from "./helpers.js";

let home: TestHome;
const homes: TestHome[] = [];
const sleepers = sleepMarkers(7);
/** Runs this file started, whose containers and networks a failed test must not leave behind. */
const runIds = new Set<string>();
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  await ensureBuilt();
  home = newHome();
}, 200_000);

afterEach(() => {
  killStartedRuns();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  for (const server of servers.splice(0)) server.close();
  removeLeftovers();
  sleepers.killAll();
});

afterAll(() => {
  for (const h of homes) h.remove();
});

function newHome(): TestHome {
  const h = new TestHome();
  homes.push(h);
  return h;
}

// ---------------------------------------------------------------- probes and cleanup

function podman(args: string[]): string {
  return execFileSync("podman", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 }).trim();
}

/** IDs of the run's containers and networks, as podman itself lists them (not through troupe). */
const containersOf = (runId: string) => podman(["ps", "-a", "--filter", `label=troupe.run=${runId}`, "-q"]).split("\n").filter(Boolean);
const networksOf = (runId: string) => podman(["network", "ls", "--filter", `label=troupe.run=${runId}`, "-q"]).split("\n").filter(Boolean);
/** `podman system service` processes troupe started for a TROUPE_HOME (their sockets live in $TROUPE_HOME/engine/). */
const servicesOf = (h: TestHome) => processesWith(`unix://${h.home}/engine/`).filter((p) => p.cmdline.includes("system service"));

/** What a failed test left: our runs' containers and networks, and podman services started for our homes. */
function removeLeftovers(): void {
  for (const id of runIds) {
    try {
      const containers = containersOf(id);
      if (containers.length) podman(["rm", "-f", ...containers]);
      const networks = networksOf(id);
      if (networks.length) podman(["network", "rm", "-f", ...networks]);
    } catch {
      // Best effort: the assertions say what troupe did.
    }
  }
  runIds.clear();
  for (const h of homes) {
    for (const { pid } of servicesOf(h)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
  }
}

/** Runs a workflow on containers and remembers its id for the cleanup. */
async function runOnContainers(file: string, options: Parameters<typeof runJson>[1]): ReturnType<typeof runJson> {
  const run = await runJson(file, { target: "container", timeoutMs: 45_000, ...options });
  runIds.add(run.record.id);
  return run;
}

/** The run's progress (on stderr with `--output json`). */
const firstLine = (result: TroupeResult) => result.stderr.split("\n")[0] ?? "";

/** A TCP server on all of the host's addresses at a random port; closed after the test. */
async function listen(onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "0.0.0.0", resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A server that answers each connection's first line (busybox nc has no -N, so one request per connection). */
function lineServer(answer: (line: string) => string): Promise<number> {
  return listen((socket) => {
    let buffered = "";
    socket.setEncoding("utf8").on("data", (data: string) => {
      buffered += data;
      const nl = buffered.indexOf("\n");
      if (nl >= 0) socket.end(answer(buffered.slice(0, nl).trim()) + "\n");
    });
  });
}

/** Runs troupe (json) and sends `signal` once `ready(runId)` holds; SIGKILL leaves no record. */
async function runAndSignal(
  file: string,
  h: TestHome,
  signal: NodeJS.Signals,
  ready: (runId: string) => boolean,
): Promise<{ result: TroupeResult; runId: string; record?: RunRecord }> {
  let runId: string | undefined;
  const result = await troupe(["run", file, "--runtime", "container", "--output", "json"], {
    home: h.home,
    timeoutMs: 45_000,
    onSpawn: (child) => {
      child.stderr?.on("data", (d: Buffer) => (runId ??= /troupe: run (\S+):/.exec(d.toString())?.[1]));
      const poll = setInterval(() => {
        if (!runId || !ready(runId)) return;
        clearInterval(poll);
        child.kill(signal);
      }, 50);
      child.on("close", () => clearInterval(poll));
    },
  });
  if (!runId) throw new Error(`the run never said its id\n${describeRun(result)}`);
  runIds.add(runId);
  return { result, runId, record: signal === "SIGKILL" ? undefined : (JSON.parse(result.stdout) as RunRecord) };
}

const logHas = (h: TestHome, runId: string, task: string, text: string) => {
  const file = h.logPath(runId, task);
  return fs.existsSync(file) && fs.readFileSync(file, "utf8").includes(text);
};

/** A group of sleepers (distinct sleep durations, so that their processes can be found) that say when they run. */
function sleepersSpec(h: TestHome, name: string, sleeps: string[]): string {
  const tasks = sleeps.map(
    (s, i) => `    - name: sleeper${i}${i === 0 ? "\n      lead: true" : ""}
      image: alpine:3.18
      command: ["sh", "-c", "echo started; sleep ${s}"]`,
  );
  return h.spec(name, `workflow:\n  name: ${name}-${random()}\n  groups:\n  - name: sleepers\n    tasks:\n${tasks.join("\n")}\n`);
}

// ---------------------------------------------------------------- tests

describe("images", () => {
  it("each task sees its own image's OS: busybox (alpine:3.18) and Debian (ubuntu:24.04) in one workflow", async () => {
    const file = home.spec(
      "os",
      `workflow:
  name: os-${random()}
  tasks:
  - name: small
    image: alpine:3.18
    command: ["cat", "/etc/os-release"]
  - name: big
    image: ubuntu:24.04
    command: ["bash", "-c", "cat /etc/os-release"]
`,
    );
    const run = await runOnContainers(file, { home: home.home });
    expect(run.code, describeRun(run)).toBe(0);
    expect(firstLine(run)).toMatch(/^troupe: run \S+: runtime: container, engine: podman /);
    expect(home.log(run.record.id, "small")).toMatch(/^NAME="BusyBox"$/m);
    // The host is not Debian-with-busybox: each answer can only come from its image.
    expect(home.log(run.record.id, "big")).toMatch(/^NAME="Debian GNU\/Linux"$/m);
    expect(home.log(run.record.id, "big")).not.toMatch(/BusyBox/);
  }, 60_000);

  it("a missing image fails its task FAILED_IMAGE_PULL with the engine's reason; downstream FAILED_UPSTREAM; others complete", async () => {
    const file = home.spec(
      "missing-image",
      `workflow:
  name: missing-${random()}
  tasks:
  - name: ghost
    image: troupe-test/does-not-exist:1
    command: ["sh", "-c", "echo never"]
  - name: after
    image: alpine:3.18
    command: ["sh", "-c", "echo never"]
    inputs:
    - task: ghost
  - name: solo
    image: alpine:3.18
    command: ["sh", "-c", "echo solo done"]
`,
    );
    const run = await runOnContainers(file, { home: home.home, timeoutMs: 30_000 });
    expect(run.timedOut, describeRun(run)).toBe(false);
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.wallMs).toBeLessThan(30_000);
    expect(taskOf(run.record, "ghost").status).toBe("FAILED_IMAGE_PULL");
    expect(groupOf(run.record, "after-group").status).toBe("FAILED_UPSTREAM");
    expect(taskOf(run.record, "solo")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(home.log(run.record.id, "solo")).toBe("solo done\n");
    // troupe's words, then the engine's own reason (a registry that cannot be reached or has no such image).
    expect(run.stderr).toMatch(/ghost\s*: FAILED_IMAGE_PULL .*cannot pull the image troupe-test\/does-not-exist:1: \S.{10,}/);
    expect(run.stderr).toMatch(/cannot pull the image \S+: .*(registry|docker:\/\/|denied|unauthorized|manifest|not found|no such host)/i);
  }, 60_000);

  it("--pull never runs a present image and fails a missing one as not present locally", async () => {
    const file = home.spec(
      "pull-never",
      `workflow:
  name: never-${random()}
  tasks:
  - name: present
    image: alpine:3.18
    command: ["echo", "local image"]
  - name: absent
    image: troupe-test/does-not-exist:1
    command: ["echo", "never"]
`,
    );
    const run = await runOnContainers(file, { home: home.home, extra: ["--pull", "never"], timeoutMs: 30_000 });
    expect(run.code, describeRun(run)).toBe(1);
    expect(taskOf(run.record, "present")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(home.log(run.record.id, "present")).toBe("local image\n");
    expect(taskOf(run.record, "absent").status).toBe("FAILED_IMAGE_PULL");
    expect(run.stderr).toMatch(/absent\s*: FAILED_IMAGE_PULL .*troupe-test\/does-not-exist:1 is not present locally/);
  }, 60_000);
});

describe("resources", () => {
  it("a task over its 64Mi memory limit is killed: exit 137, FAILED, and troupe says it ran out of memory", async () => {
    const file = home.spec(
      "oom",
      `workflow:
  name: oom-${random()}
  resources:
    small:
      memory: 64Mi
  tasks:
  - name: hog
    image: alpine:3.18
    resource: small
    command: ["sh", "-c"]
    args:
    - x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived
`,
    );
    const run = await runOnContainers(file, { home: home.home });
    expect(run.code, describeRun(run)).toBe(1);
    expect(taskOf(run.record, "hog")).toMatchObject({ status: "FAILED", exit_code: 137 });
    expect(home.log(run.record.id, "hog")).not.toMatch(/survived/);
    expect(run.stderr).toMatch(/hog\s*: FAILED\b.*\b(out of memory|killed\b.*\bmemory)/i);
  }, 60_000);
});

describe("networking", () => {
  it("members reach each other by name; a task of another group cannot reach the server's address", async () => {
    const banner = `hi-${random()}`;
    // The tasks coordinate through a server on the host (their gateway): the client says the server is up
    // (and its address), the outsider then makes its one attempt while the server certainly listens, and the
    // client holds the group until the outsider is done. Addresses of networks of concurrent runs may interleave,
    // so the address comes from the group itself and the test checks it against the record.
    let serverUp: string | undefined;
    let outsiderDone = false;
    const port = await lineServer((line) => {
      if (line.startsWith("up ")) serverUp = line.slice(3);
      if (line === "done") outsiderDone = true;
      if (line === "up?") return serverUp ?? "no";
      if (line === "done?") return outsiderDone ? "yes" : "no";
      return "ok";
    });
    const gateway = `gw=$(ip route | awk '/^default/ {print $3}')`;
    const file = home.spec(
      "group-net",
      `workflow:
  name: groupnet-${random()}
  groups:
  - name: pair
    tasks:
    - name: server
      image: alpine:3.18
      command: ["sh", "-c", "while true; do echo ${banner} | nc -l -p 7070; done"]
    - name: client
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        ${gateway}
        for i in $(seq 1 150); do
          answer=$(nc -w 2 server 7070 </dev/null 2>/dev/null)
          [ -n "$answer" ] && break
          sleep 0.2
        done
        echo "client got: $answer"
        [ -n "$answer" ] || exit 1
        echo "up $(awk '$2 == "server" {print $1; exit}' /etc/hosts)" | nc -w 2 $gw ${port}
        for i in $(seq 1 150); do
          [ "$(echo 'done?' | nc -w 2 $gw ${port})" = yes ] && exit 0
          sleep 0.2
        done
        echo "the outsider never reported"
        exit 1
  - name: outside
    tasks:
    - name: outsider
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        ${gateway}
        for i in $(seq 1 300); do
          target=$(echo 'up?' | nc -w 2 $gw ${port})
          [ -n "$target" ] && [ "$target" != no ] && break
          sleep 0.2
        done
        echo "attempting $target"
        answer=$(nc -w 2 "$target" 7070 </dev/null 2>&1)
        echo "answer: [$answer]"
        echo done | nc -w 2 $gw ${port}
`,
    );
    const run = await runOnContainers(file, { home: home.home, timeoutMs: 60_000 });
    expect(run.code, describeRun(run)).toBe(0);
    expect(home.log(run.record.id, "client")).toContain(`client got: ${banner}`);
    const serverIp = taskOf(run.record, "server").ip;
    expect(serverIp).toMatch(/^10\.214\.\d+\.2$/);
    expect(taskOf(run.record, "outsider").ip).not.toBe(serverIp);
    const outsider = home.log(run.record.id, "outsider");
    expect(outsider).toContain(`attempting ${serverIp}\n`);
    // Not just a failed connect: something on this machine's path may accept any TCP connection, so the
    // proof of reaching the server is its banner.
    expect(outsider).toMatch(/^answer: \[/m);
    expect(outsider).not.toContain(banner);
    expect(outsiderDone).toBe(true);
  }, 90_000);

  it("egress: a task reaches a TCP server on the host through its network's gateway", async () => {
    const greeting = `hello-from-host-${random()}`;
    const peers: string[] = [];
    const port = await listen((socket) => {
      peers.push(socket.remoteAddress ?? "?");
      socket.end(greeting + "\n");
    });
    const file = home.spec(
      "egress",
      `workflow:
  name: egress-${random()}
  tasks:
  - name: caller
    image: alpine:3.18
    command: ["sh", "-c"]
    args:
    - |
      gw=$(ip route | awk '/^default/ {print $3}')
      echo "gateway $gw"
      nc -w 5 $gw ${port} </dev/null
`,
    );
    const run = await runOnContainers(file, { home: home.home });
    expect(run.code, describeRun(run)).toBe(0);
    const ip = taskOf(run.record, "caller").ip ?? "";
    expect(ip).toMatch(/^10\.214\.\d+\.2$/);
    const log = home.log(run.record.id, "caller");
    expect(log).toContain(`gateway ${ip.replace(/\.2$/, ".1")}\n`);
    expect(log).toContain(`${greeting}\n`);
    expect(peers).toContain(ip);
  }, 60_000);
});

describe("the docker engine", () => {
  let service: ChildProcess | undefined;
  let dir: string | undefined;

  afterAll(async () => {
    if (service && service.exitCode === null && service.signalCode === null) {
      const exited = new Promise((resolve) => service!.once("exit", resolve));
      service.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (service.exitCode === null && service.signalCode === null) service.kill("SIGKILL");
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs parallel_tasks.yaml through podman's Docker-compatible API (--engine docker, DOCKER_HOST)", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-docker-"));
    const socket = path.join(dir, "docker.sock");
    service = spawn("podman", ["system", "service", "--time=0", `unix://${socket}`], { stdio: "ignore" });
    const pinged = await waitForAsync(() => ping(socket), 15_000);
    expect(pinged, "podman system service did not answer within 15 s").toBe(true);
    const run = await runOnContainers(path.join(EXAMPLES, "parallel_tasks.yaml"), {
      home: home.home,
      extra: ["--engine", "docker"],
      env: { DOCKER_HOST: `unix://${socket}` },
    });
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.record.status).toBe("COMPLETED");
    expect(firstLine(run)).toMatch(/^troupe: run \S+: runtime: container, engine: docker\b/);
    expect(firstLine(run)).toContain(`unix://${socket}`);
    for (const task of ["task-a", "task-b", "task-c"]) expect(home.log(run.record.id, task)).toBe(`Hello from ${task}\n`);
  }, 60_000);
});

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: "/_ping", timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

async function waitForAsync(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe("nothing left behind", () => {
  it("after a normal run: no container, no network, no podman service", async () => {
    const file = home.spec("normal", `workflow:\n  name: normal-${random()}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n`);
    const run = await runOnContainers(file, { home: home.home });
    expect(run.code, describeRun(run)).toBe(0);
    expect(containersOf(run.record.id)).toEqual([]);
    expect(networksOf(run.record.id)).toEqual([]);
    expect(servicesOf(home)).toEqual([]);
  }, 60_000);

  it("after SIGINT while a group of sleepers runs: exit 130, FAILED_CANCELED, nothing left", async () => {
    const sleeps = [sleepers.sleep(1000), sleepers.sleep(1000), sleepers.sleep(1000)];
    const file = sleepersSpec(home, "cancel", sleeps);
    const { result, runId, record } = await runAndSignal(file, home, "SIGINT", (id) =>
      sleeps.every((_, i) => logHas(home, id, `sleeper${i}`, "started")),
    );
    expect(result.code, describeRun(result)).toBe(130);
    expect(record?.status).toBe("FAILED_CANCELED");
    for (const i of [0, 1, 2]) expect(taskOf(record!, `sleeper${i}`).status).toBe("FAILED_CANCELED");
    expect(containersOf(runId)).toEqual([]);
    expect(networksOf(runId)).toEqual([]);
    expect(servicesOf(home)).toEqual([]);
    expect(sleeps.flatMap((s) => processesWith(s))).toEqual([]);
  }, 60_000);

  it("after SIGKILL: containers and network stay; the next run sweeps them, says so, and stops the stale podman service", async () => {
    // A home of its own: the stale service it leaves must not count against the other tests.
    const killedHome = newHome();
    const sleeps = [sleepers.sleep(1000), sleepers.sleep(1000)];
    const file = sleepersSpec(killedHome, "killed", sleeps);
    const { result, runId } = await runAndSignal(file, killedHome, "SIGKILL", (id) =>
      sleeps.every((_, i) => logHas(killedHome, id, `sleeper${i}`, "started")),
    );
    expect(result.signal).toBe("SIGKILL");
    // troupe had no chance to clean up: everything it made is still there.
    const containers = containersOf(runId);
    expect(containers).toHaveLength(2);
    expect(networksOf(runId)).toHaveLength(1);
    const staleService = processesWith(`unix://${killedHome.home}/engine/podman-${result.pid}.sock`);
    expect(staleService).toHaveLength(1);

    // (Another test file's container run starting right now could sweep these first; this file's runs are sequential.)
    const next = await runOnContainers(
      killedHome.spec("after-kill", `workflow:\n  name: after-${random()}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n`),
      { home: killedHome.home },
    );
    expect(next.code, describeRun(next)).toBe(0);
    expect(next.stderr).toMatch(/removed what an earlier run left behind: /);
    for (const id of containers) expect(next.stderr).toContain(`container ${id.slice(0, 12)} (run ${runId})`);
    expect(next.stderr).toContain(`network troupe-${runId}-0`);
    expect(containersOf(runId)).toEqual([]);
    expect(networksOf(runId)).toEqual([]);
    expect(sleeps.flatMap((s) => processesWith(s))).toEqual([]);
    const stillThere = await waitFor(
      () => processesWith(`unix://${killedHome.home}/engine/podman-${result.pid}.sock`),
      (p) => p.length === 0,
      5_000,
    );
    expect(stillThere).toEqual([]);
  }, 90_000);
});

describe("choosing the runtime", () => {
  it("without --runtime or TROUPE_RUNTIME, a run uses containers when podman is there", async () => {
    const file = home.spec("default", `workflow:\n  name: default-${random()}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n`);
    const run = await runJson(file, { home: home.home, env: { TROUPE_RUNTIME: undefined, DOCKER_HOST: undefined }, timeoutMs: 45_000 });
    runIds.add(run.record.id);
    expect(run.code, describeRun(run)).toBe(0);
    expect(firstLine(run)).toMatch(/^troupe: run \S+: runtime: container/);
  }, 60_000);

  it("--runtime container --engine docker with no engine at DOCKER_HOST exits 2 saying no engine answered", async () => {
    const file = home.spec("no-engine", `workflow:\n  name: noengine-${random()}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n`);
    const result = await troupe(["run", file, "--runtime", "container", "--engine", "docker"], {
      home: home.home,
      env: { DOCKER_HOST: "unix:///nonexistent.sock" },
    });
    expect(result.code, describeRun(result)).toBe(2);
    expect(result.stderr).toMatch(/no container engine answered/);
    expect(result.stderr).toContain("/nonexistent.sock");
  }, 30_000);
});
