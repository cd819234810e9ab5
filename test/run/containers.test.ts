/**
 * Acceptance: the container runtime (`--runtime container`) with the real CLI
 * and podman: images, pull failures and `--pull`, memory limits, networks
 * (names, isolation, egress), the docker engine path through podman's
 * Docker-compatible API, what a run leaves behind (normal end, cancel, SIGKILL
 * and the sweep), and which runtime is the default.
 *
 * Needs the images of scripts/test-images.sh and, on this kind of machine,
 * CONTAINERS_CONF (scripts/test.sh exports both).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  EXAMPLES,
  PodmanService,
  containersOfRun,
  networksOfRun,
  removeRunLeftovers,
  ROOT,
  TestHome,
  describeRun,
  ensureBuilt,
  groupOf,
  killMarked,
  killStartedRuns,
  ms,
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
/** Runs of this file, whose containers and networks a failed test must not leave behind. */
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
  for (const server of servers.splice(0)) server.close();
  removeLeftovers();
  sleepers.killAll();
});

afterAll(() => homes.forEach((h) => h.remove()));

function newHome(): TestHome {
  const h = new TestHome();
  homes.push(h);
  return h;
}

// ---------------------------------------------------------------- probes and cleanup

/** podman's own answer (not troupe's), one ID or name a line. */
/** `podman system service` processes troupe started for a TROUPE_HOME (their sockets live in $TROUPE_HOME/engine/). */
const servicesOf = (h: TestHome) => processesWith(`unix://${h.home}/engine/`).filter((p) => p.cmdline.includes("system service"));

/** What is left of a run: containers, networks, processes naming its containers (podman clients, conmon), podman services of the home. */
async function leftBehind(h: TestHome, runId: string): Promise<Record<string, unknown[]>> {
  // A process may take a moment to go once its container is removed.
  const processes = await waitFor(
    () => [...processesWith(`troupe-${runId}-`), ...servicesOf(h)],
    (p) => p.length === 0,
    30_000,
  );
  return { containers: containersOfRun(runId), networks: networksOfRun(runId), processes };
}
const NOTHING = { containers: [], networks: [], processes: [] };

/** What a failed test left: our runs' containers and networks, podman services troupe started for our homes (killed by PID). */
function removeLeftovers(): void {
  removeRunLeftovers(runIds);
  runIds.clear();
  for (const h of homes) killMarked(`unix://${h.home}/engine/`);
}

/** Runs a workflow on containers and remembers its id for the cleanup. */
async function runOnContainers(file: string, options: Parameters<typeof runJson>[1]): ReturnType<typeof runJson> {
  const run = await runJson(file, { target: "container", timeoutMs: 45_000, ...options });
  runIds.add(run.record.id);
  return run;
}

/** The first line of the run's progress (on stderr with `--output json`). */
const firstLine = (result: TroupeResult) => result.stderr.split("\n")[0] ?? "";

const tinySpec = (h: TestHome, name: string) =>
  h.spec(name, `workflow:\n  name: ${name}-${random()}\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n`);

/** A TCP server on all of the host's addresses at a random port; closed after the test. */
async function listen(onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.add(socket.on("close", () => sockets.delete(socket)).on("error", () => undefined));
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "0.0.0.0", resolve));
  return (server.address() as net.AddressInfo).port;
}

/** Answers each connection's first line (busybox nc has no -N: one request per connection). */
const lineServer = (answer: (line: string) => string): Promise<number> =>
  listen((socket) => {
    let buffered = "";
    socket.setEncoding("utf8").on("data", (data: string) => {
      buffered += data;
      if (buffered.includes("\n")) socket.end(answer(buffered.slice(0, buffered.indexOf("\n")).trim()) + "\n");
    });
  });

/** Runs troupe (json) and sends `signal` once `ready(runId)` holds; SIGKILL leaves no record. */
async function runAndSignal(file: string, h: TestHome, signal: NodeJS.Signals, ready: (runId: string) => boolean) {
  let runId: string | undefined;
  const result = await troupe(["run", file, "--runtime", "container", "--output", "json"], {
    home: h.home,
    timeoutMs: 45_000,
    onSpawn: (child) => {
      child.stderr?.on("data", (d: Buffer) => (runId ??= /troupe: run (\S+):/.exec(d.toString())?.[1]));
      const poll = setInterval(() => runId && ready(runId) && (clearInterval(poll), child.kill(signal)), 50);
      child.on("close", () => clearInterval(poll));
    },
  });
  if (!runId) throw new Error(`the run never said its id\n${describeRun(result)}`);
  runIds.add(runId);
  return { result, runId, record: signal === "SIGKILL" ? undefined : (JSON.parse(result.stdout) as RunRecord) };
}

/** A group of sleepers (sleep durations of their own, so their processes can be found) that say when they run. */
function sleepersSpec(h: TestHome, name: string, sleeps: string[]): string {
  const tasks = sleeps.map(
    (s, i) => `    - name: sleeper${i}${i === 0 ? "\n      lead: true" : ""}\n      image: alpine:3.18
      command: ["sh", "-c", "echo started; sleep ${s}"]`,
  );
  return h.spec(name, `workflow:\n  name: ${name}-${random()}\n  groups:\n  - name: sleepers\n    tasks:\n${tasks.join("\n")}\n`);
}
const allStarted = (h: TestHome, runId: string, count: number) =>
  Array.from({ length: count }, (_, i) => h.logPath(runId, `sleeper${i}`)).every(
    (file) => fs.existsSync(file) && fs.readFileSync(file, "utf8").includes("started"),
  );

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
    expect(taskOf(run.record, "ghost").status).toBe("FAILED_IMAGE_PULL");
    expect(groupOf(run.record, "after-group").status).toBe("FAILED_UPSTREAM");
    expect(taskOf(run.record, "solo")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
    expect(home.log(run.record.id, "solo")).toBe("solo done\n");
    // troupe's words, then the engine's own reason, which names the image again or the registry (podman's CLI:
    // 'short-name "troupe-test/..." did not resolve'; its API: "docker://troupe-test/..."; docker: "pull access denied for ...").
    expect(run.stderr).toMatch(/ghost\s*: FAILED_IMAGE_PULL .*cannot pull the image troupe-test\/does-not-exist:1: \S.{10,}/);
    expect(run.stderr).toMatch(
      /cannot pull the image troupe-test\/does-not-exist:1: .*(troupe-test\/does-not-exist|registr|denied|unauthorized|manifest)/i,
    );
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
    // podman's conmon notes the kill in a file `oom` in its working directory: troupe's, never the user's.
    expect(fs.existsSync(path.join(ROOT, "oom"))).toBe(false);
    expect(run.stderr).toMatch(/hog\s*: FAILED\b.*\b(out of memory|killed\b.*\bmemory)/i);
  }, 60_000);
});

describe("networking", () => {
  it("members reach each other by name; tasks of other groups reach neither the server nor each other", async () => {
    const banner = `hi-${random()}`;
    // The tasks coordinate through a server on the host (their gateway), so that each attempt happens while its
    // target certainly listens: the client, once it has the server's banner, and the neighbour (a task alone in its
    // group, as the outsider is) post their addresses; the outsider tries each, then posts "done", which ends the
    // others. Networks of concurrent runs may interleave, so the addresses come from the tasks and the test checks
    // them against the record.
    const facts = new Map<string, string>();
    const port = await lineServer((line) => {
      const [verb, key = "", ...value] = line.split(" ");
      if (verb === "set") facts.set(key, value.join(" "));
      return verb === "get" ? (facts.get(key) ?? "no") : "ok";
    });
    const prelude = [
      `gw=$(ip route | awk '/^default/ {print $3}')`,
      `ask() { echo "$1" | nc -w 2 $gw ${port}; }`,
      `wait_for() { end=$(($(date +%s) + 30)); while [ $(date +%s) -lt $end ]; do v=$(ask "get $1"); [ -n "$v" ] && [ "$v" != no ] && echo "$v" && return 0; sleep 0.2; done; echo "no $1 within 30 s" >&2; return 1; }`,
      // A task's own name is in its /etc/hosts; a peer's, on its group's network, is answered by the engine's DNS.
      `my_address() { a=$(awk -v me="$1" '$2 == me {print $1; exit}' /etc/hosts); [ -n "$a" ] || a=$(nslookup "$1" | sed -n 's/^Address: *\\([0-9.]*\\)$/\\1/p' | head -n1); echo "$a"; }`,
    ].join("\n        ");
    const listener = `while true; do echo ${banner} | nc -l -p 7070; done`;
    const file = home.spec(
      "group-net",
      `workflow:
  name: groupnet-${random()}
  groups:
  - name: pair
    tasks:
    - name: server
      image: alpine:3.18
      command: ["sh", "-c", "${listener}"]
    - name: client
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        ${prelude}
        for i in $(seq 1 150); do
          answer=$(nc -w 2 server 7070 </dev/null 2>/dev/null)
          [ -n "$answer" ] && break
          sleep 0.2
        done
        echo "client got: $answer"
        [ -n "$answer" ] && ask "set server $(my_address server)" && wait_for done
  - name: beside
    tasks:
    - name: neighbour
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        ${prelude}
        (${listener}) &
        until [ -n "$(nc -w 1 127.0.0.1 7070 </dev/null 2>/dev/null)" ]; do sleep 0.1; done
        ask "set neighbour $(my_address neighbour)" && wait_for done
  - name: outside
    tasks:
    - name: outsider
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        ${prelude}
        for peer in server neighbour; do
          target=$(wait_for $peer)
          echo "attempting $peer at $target"
          echo "answer from $peer: [$(nc -w 2 "$target" 7070 </dev/null 2>&1)]"
        done
        ask "set done yes"
        # Leave after the neighbour: a task leaving the run's network may cut the others' way to the gateway
        # for a while (see the egress test), and the neighbour still needs it to hear "done".
        sleep 2
`,
    );
    const run = await runOnContainers(file, { home: home.home, timeoutMs: 60_000 });
    expect(run.code, describeRun(run)).toBe(0);
    expect(home.log(run.record.id, "client")).toContain(`client got: ${banner}\n`);
    const [server, neighbour, outsider] = ["server", "neighbour", "outsider"].map((t) => taskOf(run.record, t).ip ?? "");
    expect(server).toMatch(/^10\.214\.\d+\.2$/);
    expect(new Set([server, neighbour, outsider]).size).toBe(3);
    const log = home.log(run.record.id, "outsider");
    expect(log).toContain(`attempting server at ${server}\n`);
    expect(log).toContain(`attempting neighbour at ${neighbour}\n`);
    // Each attempt was made and failed. A failed connect is not the proof: something on this machine's way out
    // may accept any TCP connection; reaching the target means getting its banner.
    expect(log).toMatch(/^answer from server: \[/m);
    expect(log).toMatch(/^answer from neighbour: \[/m);
    expect(log).not.toContain(banner);
    expect(facts.get("done")).toBe("yes");
  }, 90_000);

  it("egress: a task reaches a TCP server on the host through its gateway, also after other tasks of the run have ended", async () => {
    // Tasks alone in their group may share the run's network: one of them ending must not cut the others off. (A Linux
    // bridge takes the lowest MAC address of its ports unless one is set, so a port leaving can change the gateway's MAC
    // under the others' ARP entries; with five brief tasks, one of them likely held it.)
    // The caller calls at once, then again until the host answers: the host says "wait" until the record has the brief
    // tasks ended and their containers are gone, so the second answer comes after they left, however slow the machine.
    const greeting = `hello-from-host-${random()}`;
    const peers: string[] = [];
    let runId: string | undefined;
    let briefsGone = false;
    const briefNames = [0, 1, 2, 3, 4].map((i) => `brief${i}`);
    // Watched from here while the run goes on (busybox nc does not wait for a late answer: each is given at once).
    const watchBriefs = async (isRunning: () => boolean): Promise<void> => {
      while (!briefsGone && isRunning()) {
        if (runId !== undefined) {
          const query = await troupe(["query", runId, "--output", "json"], { home: home.home });
          const record = query.code === 0 ? (JSON.parse(query.stdout) as RunRecord) : undefined;
          const ended = record !== undefined && briefNames.every((name) => taskOf(record, name).status === "COMPLETED");
          // Only the caller's container is left.
          briefsGone = ended && containersOfRun(runId).length === 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    let calls = 0;
    const port = await listen((socket) => {
      peers.push(socket.remoteAddress ?? "?");
      socket.end(calls++ === 0 || briefsGone ? greeting + "\n" : "wait\n");
    });
    const briefs = briefNames.map((name) => `  - {name: ${name}, image: alpine:3.18, command: [true]}`).join("\n");
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
      echo "at once: $(nc -w 5 $gw ${port} </dev/null 2>&1)"
      tries=0
      while later=$(nc -w 30 $gw ${port} </dev/null 2>&1); [ "$later" = wait ] && [ $tries -lt 300 ]; do
        tries=$((tries+1)); sleep 0.2
      done
      echo "later: $later"
${briefs}
`,
    );
    const run = await runOnContainers(file, {
      home: home.home,
      onSpawn: (child) => {
        child.stderr?.on("data", (d: Buffer) => (runId ??= /troupe: run (\S+):/.exec(d.toString())?.[1]));
        void watchBriefs(() => child.exitCode === null && child.signalCode === null);
      },
    });
    expect(run.code, describeRun(run)).toBe(0);
    const caller = taskOf(run.record, "caller");
    expect(caller.ip).toMatch(/^10\.214\.\d+\.\d+$/);
    const log = home.log(run.record.id, "caller");
    expect(log).toContain(`gateway ${caller.ip!.replace(/\.\d+$/, ".1")}\n`);
    expect(log).toContain(`at once: ${greeting}\n`);
    expect(peers).toContain(caller.ip);
    // The second answer came once the brief tasks had ended and their containers were gone.
    expect(briefsGone, log).toBe(true);
    for (const name of briefNames) expect(ms(taskOf(run.record, name).end_time)).toBeLessThan(ms(caller.end_time));
    expect(log).toContain(`later: ${greeting}\n`);
  }, 90_000);
});

describe("the docker engine", () => {
  let service: PodmanService | undefined;
  afterAll(() => service?.stop());

  it("runs parallel_tasks.yaml through podman's Docker-compatible API (--engine docker, DOCKER_HOST)", async () => {
    service = await PodmanService.start();
    const run = await runOnContainers(path.join(EXAMPLES, "parallel_tasks.yaml"), {
      home: home.home,
      extra: ["--engine", "docker"],
      env: { DOCKER_HOST: service.url },
    });
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.record.status).toBe("COMPLETED");
    expect(firstLine(run)).toMatch(/^troupe: run \S+: runtime: container, engine: docker\b/);
    expect(firstLine(run)).toContain(service.url);
    for (const task of ["task-a", "task-b", "task-c"]) expect(home.log(run.record.id, task)).toBe(`Hello from ${task}\n`);
    expect(await leftBehind(home, run.record.id)).toEqual(NOTHING);
  }, 60_000);
});

describe("nothing left behind", () => {
  it("after a normal run: no container, no network, no process (podman service or client)", async () => {
    const file = tinySpec(home, "normal");
    const run = await runOnContainers(file, { home: home.home });
    expect(run.code, describeRun(run)).toBe(0);
    expect(await leftBehind(home, run.record.id)).toEqual(NOTHING);
  }, 60_000);

  it("after SIGINT while a group of sleepers runs: exit 130, FAILED_CANCELED, nothing left", async () => {
    const sleeps = [sleepers.sleep(1000), sleepers.sleep(1000), sleepers.sleep(1000)];
    const file = sleepersSpec(home, "cancel", sleeps);
    const { result, runId, record } = await runAndSignal(file, home, "SIGINT", (id) => allStarted(home, id, 3));
    expect(result.code, describeRun(result)).toBe(130);
    expect(record?.status).toBe("FAILED_CANCELED");
    for (const i of [0, 1, 2]) expect(taskOf(record!, `sleeper${i}`).status).toBe("FAILED_CANCELED");
    expect(await leftBehind(home, runId)).toEqual(NOTHING);
    expect(sleeps.flatMap((s) => processesWith(s))).toEqual([]);
  }, 60_000);

  it("after SIGKILL: containers and network stay; the next run sweeps them, says so, and stops what the killed run started", async () => {
    // A home of its own: what the killed run leaves (a podman service for its home, if the engine needs one)
    // must not count against the other tests.
    const killedHome = newHome();
    const sleeps = [sleepers.sleep(1000), sleepers.sleep(1000)];
    const file = sleepersSpec(killedHome, "killed", sleeps);
    const { result, runId } = await runAndSignal(file, killedHome, "SIGKILL", (id) => allStarted(killedHome, id, 2));
    expect(result.signal).toBe("SIGKILL");
    // troupe had no chance to clean up: what it made is still there.
    const containers = containersOfRun(runId);
    expect(containers).toHaveLength(2);
    expect(networksOfRun(runId)).toHaveLength(1);

    // (A container run of another test file starting right now could sweep these first; this file's runs are sequential.)
    const next = await runOnContainers(tinySpec(killedHome, "after-kill"), { home: killedHome.home });
    expect(next.code, describeRun(next)).toBe(0);
    expect(next.stderr).toMatch(/removed what an earlier run left behind: /);
    for (const id of containers) expect(next.stderr).toContain(`container ${id.slice(0, 12)} (run ${runId})`);
    expect(next.stderr).toMatch(new RegExp(`network troupe-${runId}-[0-9a-f]{8}-0\\b`));
    // Including a podman service the killed troupe had started for this home, and the sleepers.
    expect(await leftBehind(killedHome, runId)).toEqual(NOTHING);
    expect(sleeps.flatMap((s) => processesWith(s))).toEqual([]);
  }, 90_000);
});

describe("choosing the runtime", () => {
  it("without --runtime or TROUPE_RUNTIME, a run uses containers when podman is there", async () => {
    const file = tinySpec(home, "default");
    const run = await runJson(file, { home: home.home, env: { TROUPE_RUNTIME: undefined, DOCKER_HOST: undefined }, timeoutMs: 45_000 });
    runIds.add(run.record.id);
    expect(run.code, describeRun(run)).toBe(0);
    expect(firstLine(run)).toMatch(/^troupe: run \S+: runtime: container/);
  }, 60_000);

  it("--runtime container --engine docker with no engine at DOCKER_HOST exits 2 saying no engine answered", async () => {
    const file = tinySpec(home, "no-engine");
    const result = await troupe(["run", file, "--runtime", "container", "--engine", "docker"], {
      home: home.home,
      env: { DOCKER_HOST: "unix:///nonexistent.sock" },
    });
    expect(result.code, describeRun(result)).toBe(2);
    expect(result.stderr).toMatch(/no container engine answered/);
    expect(result.stderr).toContain("/nonexistent.sock");
  }, 30_000);
});
