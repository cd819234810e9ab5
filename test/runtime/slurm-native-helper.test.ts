/**
 * troupe-slurm-helper (native/slurm-helper*.c), the member helper of a Slurm member in troupe's host sandbox,
 * run as its step runs it but without Slurm: SLURM_PROCID picks its member from a members file, the run's
 * token, `keep` and `listener` files beside it, and troupe's own side of the protocol (helper-listener.ts) on
 * loopback. Its sandbox is, in turn, the real bwrap, with a plain command line of the shape node-sandbox.ts
 * computes (status on fd 3, barrier on fd 4, a PID namespace whose PID 1 is bwrap's child), and, as root,
 * troupe's own sandbox that the helper builds itself from directives (native/sandbox.c): the same protocol
 * and the same outcomes from both. The cluster's tests (test/slurm/, the Slurm conformance case) run it
 * through Slurm.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { DEFAULT_TASK_USER, hiddenPaths } from "../../src/runtime/host/sandbox.js";
import type { TaskLaunch } from "../../src/runtime/index.js";
import { stageNodeSandbox } from "../../src/runtime/slurm/node-sandbox.js";
import { builtHelper } from "../../src/runtime/native-helpers.js";
import { HelperListener, type HelperLink, type HelperMessage } from "../../src/runtime/slurm/helper-listener.js";
import { SharedCopies } from "../../src/runtime/slurm/shared-copies.js";
import { SlurmPool, type SlurmSettings } from "../../src/runtime/slurm/slurm-pool.js";

const TOKEN = "0123456789abcdef0123456789abcdef";
const helperBinary = builtHelper("troupe-slurm-helper");

const IS_ROOT = process.getuid?.() === 0;

/** bwrap as node-sandbox.ts starts it, around `script` (sh -c): the node's root, a PID namespace, fds 3 and 4. */
const bwrap = (script: string) => [
  "bwrap",
  "--ro-bind",
  "/",
  "/",
  "--dev",
  "/dev",
  "--proc",
  "/proc",
  "--unshare-pid",
  "--die-with-parent",
  "--json-status-fd",
  "3",
  "--block-fd",
  "4",
  "--",
  "sh",
  "-c",
  script,
];

/** troupe's own sandbox's directives (as root), around `script`: the node's root read-only, its own /proc, /dev, /tmp. */
const own = (script: string) => [
  "hostname",
  hostname(),
  "chdir",
  "/",
  "read-only-root",
  "proc",
  "/proc",
  "dev",
  "/dev",
  "tmpfs",
  "/tmp",
  "--",
  "sh",
  "-c",
  script,
];

/** The sandbox the tests below launch: bwrap's command line, or troupe's own sandbox's directives. */
let sandbox: { launch: (script: string) => object; name: string } = { launch: (script) => ({ sandbox: bwrap(script) }), name: "bwrap" };
const sandboxes = [
  { launch: (script: string) => ({ sandbox: bwrap(script) }), name: "bwrap" },
  ...(IS_ROOT
    ? [{ launch: (script: string) => ({ sandbox: own(script), ownSandbox: true }), name: "troupe's own sandbox (as root)" }]
    : []),
];

/** One helper run: its run directory, the listener it speaks to, and what it said. */
interface Run {
  runDir: string;
  dir: string;
  logPath: string;
  listener: HelperListener;
  messages: Array<HelperMessage | { t: "hello"; hello: HelperLink["hello"] }>;
  link?: HelperLink;
  helper: ChildProcess;
  exited: Promise<number | null>;
}

let root: string;
const runs: Run[] = [];

beforeEach(() => {
  // Not skipped when missing: CI builds it (scripts/test.sh installs libjansson-dev).
  expect(helperBinary, "troupe-slurm-helper was not built: `npm run build` needs cc and libjansson-dev").toBeDefined();
  root = mkdtempSync(join(tmpdir(), "troupe-slurm-helper-"));
});

afterEach(async () => {
  for (const run of runs.splice(0)) {
    if (run.helper.exitCode === null && run.helper.signalCode === null) run.helper.kill("SIGKILL");
    await run.listener.close();
  }
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Listens as troupe does, at a fresh port, named in the run's listener file. */
async function listen(run: Pick<Run, "runDir" | "messages"> & { link?: HelperLink }): Promise<HelperListener> {
  const listener = await HelperListener.open("127.0.0.1", TOKEN);
  listener.route("g-1-m1", {
    connected: (link) => {
      run.link = link;
      run.messages.push({ t: "hello", hello: link.hello });
    },
    message: (_link, message) => run.messages.push(message),
    disconnected: () => undefined,
  });
  writeFileSync(join(run.runDir, "listener.tmp"), listener.address);
  // Written whole, as the pool does (slurm-pool.ts openSession).
  renameSync(join(run.runDir, "listener.tmp"), join(run.runDir, "listener"));
  return listener;
}

/** The helper of member 1 (the second line: SLURM_PROCID=1) of a run, as a step's task starts it. */
async function startHelper(options: { keep?: boolean } = {}): Promise<Run> {
  const runDir = join(root, "runs", "r1");
  const dir = join(runDir, "members", "g-1-m1");
  mkdirSync(join(runDir, "jobs"), { recursive: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(runDir, "token"), `${TOKEN}\n`);
  if (options.keep) writeFileSync(join(runDir, "keep"), "");
  const membersFile = join(runDir, "jobs", "g-1.members");
  writeFileSync(membersFile, `g-1-m0\t${join(runDir, "members", "g-1-m0")}\ng-1-m1\t${dir}\n`);
  const partial = { runDir, messages: [] as Run["messages"] } as Run;
  partial.listener = await listen(partial);
  const helper = spawn(helperBinary!, [membersFile], {
    env: { PATH: process.env.PATH, SLURM_PROCID: "1", SLURM_JOB_ID: "4242", CUDA_VISIBLE_DEVICES: "1,0" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const run: Run = Object.assign(partial, {
    dir,
    logPath: join(root, "logs", "deep", "m1.log"),
    helper,
    exited: new Promise<number | null>((resolve) => helper.once("exit", (code) => resolve(code))),
  });
  runs.push(run);
  return run;
}

async function until<T>(what: string, probe: () => T | undefined | false, limitMs = 10_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const said = (run: Run, t: string) => until(`"${t}"`, () => run.messages.find((m) => m.t === t));
const launch = (run: Run, script: string, extra: object = {}) =>
  run.link!.send({ t: "launch", launch: { ...sandbox.launch(script), logPath: run.logPath, orphanMs: 15_000, ...extra } });

/** Helper to ready: connected, launched, its sandbox's PID 1 named. */
async function ready(script: string, extra: object = {}, options: { keep?: boolean } = {}): Promise<Run> {
  const run = await startHelper(options);
  await said(run, "hello");
  launch(run, script, extra);
  await said(run, "ready");
  return run;
}

describe.each(sandboxes)("troupe-slurm-helper, without Slurm, in $name", (chosen) => {
  beforeEach(() => {
    sandbox = chosen;
  });

  it("says hello, is ready at the barrier, starts on go, and writes the exit file before it says exit", async () => {
    const run = await ready("echo out; echo err >&2; exit 3");
    const hello = run.messages[0] as { hello: HelperLink["hello"] };
    expect(hello.hello).toEqual({ key: "g-1-m1", node: hostname(), job: "4242", running: false, gpuEnv: { CUDA_VISIBLE_DEVICES: "1,0" } });
    // Held at the barrier: nothing has run.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readFileSync(run.logPath, "utf8")).toBe("");
    const before = Date.now();
    run.link!.send({ t: "go" });
    const started = (await said(run, "started")) as { at: number };
    expect(started.at).toBeGreaterThanOrEqual(before - 5);
    expect(started.at).toBeLessThanOrEqual(Date.now());
    expect(await said(run, "exit")).toEqual({ t: "exit", code: 3 });
    expect(readFileSync(join(run.dir, "exit"), "utf8")).toBe("3\n");
    expect(readFileSync(run.logPath, "utf8").split("\n").sort()).toEqual(["", "err", "out"]);
    expect(await run.exited).toBe(0);
    expect(existsSync(join(run.dir, "left"))).toBe(true);
    expect(existsSync(join(run.dir, "signalled"))).toBe(false);
  });

  it("a launch with releaseWhenReady (a group of one) starts its command as the sandbox is ready, without a go; a go then changes nothing", async () => {
    const run = await ready("echo ran; exit 4", { releaseWhenReady: true });
    const readyAt = run.messages.findIndex((m) => m.t === "ready");
    const started = (await said(run, "started")) as { at: number };
    expect(run.messages.findIndex((m) => m === started)).toBeGreaterThan(readyAt);
    expect(await said(run, "exit")).toEqual({ t: "exit", code: 4 });
    run.link?.send({ t: "go" });
    expect(await run.exited).toBe(0);
    expect(run.messages.filter((m) => m.t === "started")).toHaveLength(1);
    expect(readFileSync(run.logPath, "utf8")).toBe("ran\n");
  });

  it("masks the launch's secrets in the output it writes to the log, cut anywhere", async () => {
    const secret = "sk-live-0123456789abcdef";
    const script = `printf 'token=sk-live-0123'; sleep 0.2; printf '456789abcdef and again %s\\n' '${secret}' >&2`;
    const run = await ready(script, { secrets: [secret, "short"] });
    run.link!.send({ t: "go" });
    expect(await said(run, "exit")).toEqual({ t: "exit", code: 0 });
    expect(readFileSync(run.logPath, "utf8")).toBe("token=[MASKED] and again [MASKED]\n");
  });

  it("a stop at the barrier kills the sandbox at once: stopped, no exit file", async () => {
    const run = await ready("echo never");
    run.link!.send({ t: "stop", graceMs: 10_000 });
    expect(await said(run, "stopped")).toEqual({ t: "stopped" });
    expect(await run.exited).toBe(0);
    expect(existsSync(join(run.dir, "exit"))).toBe(false);
    expect(readFileSync(run.logPath, "utf8")).toBe("");
  });

  it("a stop after the release: SIGTERM to the command, then SIGKILL to the sandbox after the grace", async () => {
    const polite = await ready("trap 'echo term; exit 7' TERM; while :; do sleep 0.05; done");
    polite.link!.send({ t: "go" });
    await said(polite, "started");
    await new Promise((resolve) => setTimeout(resolve, 200));
    polite.link!.send({ t: "stop", graceMs: 10_000 });
    expect(await said(polite, "exit")).toEqual({ t: "exit", code: 7 });
    expect(readFileSync(polite.logPath, "utf8")).toBe("term\n");

    const stubborn = await ready("trap '' TERM; while :; do sleep 0.05; done");
    stubborn.link!.send({ t: "go" });
    await said(stubborn, "started");
    const asked = Date.now();
    stubborn.link!.send({ t: "stop", graceMs: 500 });
    expect(await said(stubborn, "exit")).toEqual({ t: "exit", code: 137 });
    expect(Date.now() - asked).toBeGreaterThanOrEqual(450);
    expect(readFileSync(join(stubborn.dir, "exit"), "utf8")).toBe("137\n");
  });

  it("connects again to the address the listener file names next, saying its command runs", async () => {
    const run = await ready("sleep 1.5; exit 5", {}, { keep: true });
    run.link!.send({ t: "go" });
    await said(run, "started");
    await run.listener.close();
    // troupe restarted: a new listener, at another port, named in the same file.
    run.messages.length = 0;
    run.listener = await listen(run);
    const hello = (await said(run, "hello")) as { hello: HelperLink["hello"] };
    expect(hello.hello.running).toBe(true);
    expect(await said(run, "started")).toEqual({ t: "started", again: true });
    expect(await said(run, "exit")).toEqual({ t: "exit", code: 5 });
  });

  it("ends the command of a run that does not keep its tasks once troupe has been gone for orphanMs", async () => {
    const run = await ready("trap 'exit 9' TERM; while :; do sleep 0.05; done", { orphanMs: 300 });
    run.link!.send({ t: "go" });
    await said(run, "started");
    await run.listener.close();
    expect(await run.exited).toBe(0);
    expect(readFileSync(join(run.dir, "exit"), "utf8")).toBe("9\n");
  });

  it("Slurm's SIGTERM: the signalled file and message, no exit file", async () => {
    const run = await ready("while :; do sleep 0.05; done");
    run.link!.send({ t: "go" });
    await said(run, "started");
    run.helper.kill("SIGTERM");
    expect(await said(run, "signalled")).toEqual({ t: "signalled", code: 143 });
    expect(readFileSync(join(run.dir, "signalled"), "utf8")).toBe("143\n");
    expect(existsSync(join(run.dir, "exit"))).toBe(false);
    expect(await run.exited).toBe(0);
  });
});

/** A helper given `launch` (its log path added) that fails: what it said, and its exit code once gone (its listener closed). */
async function failedLaunch(launch: object): Promise<{ message: string; exitCode: number | null }> {
  const run = await startHelper();
  await said(run, "hello");
  run.link!.send({ t: "launch", launch: { logPath: run.logPath, ...launch } });
  const { message } = (await said(run, "failed")) as { message: string };
  const exitCode = await run.exited;
  runs.splice(runs.indexOf(run), 1);
  await run.listener.close();
  return { message, exitCode };
}

describe("troupe-slurm-helper's sandbox that cannot start", () => {
  it("fails saying why when bwrap is missing, and with the log's last line when the sandbox cannot be set up", async () => {
    const missing = await failedLaunch({ sandbox: ["troupe-no-such-bwrap", "--"], orphanMs: 15_000 });
    expect(missing.message).toBe(
      `cannot start troupe-no-such-bwrap on node ${hostname()}: spawn troupe-no-such-bwrap ENOENT (troupe runs Slurm tasks in bubblewrap on their nodes: install it there, apt-get install bubblewrap)`,
    );
    expect(missing.exitCode).toBe(0);
    const setup = await failedLaunch({
      sandbox: ["bwrap", "--ro-bind", "/troupe-no-such-dir", "/x", "--json-status-fd", "3", "--", "true"],
    });
    expect(setup.message).toMatch(new RegExp(`^sandbox setup failed on node ${hostname()}: bwrap: .*troupe-no-such-dir`));
  });

  it.skipIf(!IS_ROOT)(
    "troupe's own sandbox (as root): fails with the log's last line when it cannot be set up, or with what its directives lack",
    async () => {
      const setup = await failedLaunch({
        sandbox: ["read-only-root", "ro-bind", "/troupe-no-such-dir", "/x", "--", "true"],
        ownSandbox: true,
      });
      expect(setup.message).toMatch(new RegExp(`^sandbox setup failed on node ${hostname()}: .*/troupe-no-such-dir`));
      expect(setup.exitCode).toBe(0);
      const invalid = await failedLaunch({ sandbox: ["read-only-root", "bind", "/tmp"], ownSandbox: true });
      expect(invalid.message).toBe("sandbox directive without its arguments");
    },
  );

  it.skipIf(!IS_ROOT)(
    "troupe's own sandbox of a member as node-sandbox.ts stages it: the node's name and address, files, output, the task's user and variables, troupe's home hidden",
    async () => {
      // Outside /tmp, which the sandbox has a private one of.
      const home = mkdtempSync("/var/tmp/troupe-own-sandbox-home-");
      onTestFinished(() => rmSync(home, { recursive: true, force: true }));
      writeFileSync(join(home, "secret"), "troupe's\n");
      const run = await startHelper();
      await said(run, "hello");
      const member: TaskLaunch = {
        key: "g/t/0",
        taskName: "t",
        groupName: "g",
        retryId: 0,
        image: "alpine:3.18",
        argv: [
          "sh",
          "-c",
          `echo "user=$(id -u) host=$(hostname) resolves=$(getent hosts n7 | cut -d' ' -f1) own=$OWN"; cat /opt/troupe-own-sandbox/config.txt; ls -A ${home} | wc -l; echo out > $OUTPUT/result.txt`,
        ],
        env: { OWN: "the task's" },
        files: [{ path: "/opt/troupe-own-sandbox/config.txt", contents: Buffer.from("placed\n") }],
        outputDir: join(root, "outputs", "t", "0"),
        inputDirs: [],
        address: "127.0.0.9",
        hosts: { t: "127.0.0.9" },
        logPath: run.logPath,
      };
      member.env.OUTPUT = member.outputDir;
      const site = { home, hidden: hiddenPaths(home, join(root, "pool")), root: true, ownSandbox: true, taskUser: DEFAULT_TASK_USER };
      const staged = stageNodeSandbox(member, { node: "n7", gpuEnv: {} }, run.dir, site);
      expect(staged.ownSandbox).toBe(true);
      // Made on the node by the sandbox itself, not by troupe on the login node.
      expect(existsSync(member.outputDir)).toBe(false);
      run.link!.send({ t: "launch", launch: { ...staged, logPath: run.logPath, orphanMs: 15_000, releaseWhenReady: true } });
      expect(await said(run, "exit")).toEqual({ t: "exit", code: 0 });
      expect(readFileSync(run.logPath, "utf8")).toBe("user=65534 host=n7 resolves=127.0.0.9 own=the task's\nplaced\n0\n");
      expect(readFileSync(join(member.outputDir, "result.txt"), "utf8")).toBe("out\n");
      expect(statSync(member.outputDir).uid).toBe(DEFAULT_TASK_USER.uid);
    },
  );
});

describe("a Slurm pool's members' helper", () => {
  it("is troupe-slurm-helper for members in troupe's host sandbox, copied by its hash; the Node.js one for containers and without it", () => {
    const base = join(root, "pool");
    const native = new SharedCopies(base, {}).memberHelper();
    expect(native).toHaveLength(1);
    expect(native[0]).toMatch(/\/troupe-slurm-helper-[0-9a-f]{12}$/);
    expect(readFileSync(native[0]!)).toEqual(readFileSync(helperBinary!));
    for (const choice of [{ nodeEngine: "podman" as const }, { nativeHelper: false as const }]) {
      const [node, script] = new SharedCopies(base, { ...choice, nodePath: "/opt/node/bin/node" }).memberHelper();
      expect(node).toBe("/opt/node/bin/node");
      expect(script).toMatch(/\/member-helper-[0-9a-f]{12}\.mjs$/);
    }
  });

  it("says so once, in the pool's notices, when sandbox members run the Node.js helper (the nodes then need Node.js)", () => {
    const pool = (extra: Partial<SlurmSettings>) =>
      new SlurmPool({
        env: {},
        sharedDir: root,
        listenAddress: "127.0.0.1",
        spread: "nodes",
        home: join(root, "home"),
        nodes: [],
        ...extra,
      });
    const notice = "troupe-slurm-helper was not built";
    expect(pool({}).notices().join("\n")).not.toContain(notice);
    expect(pool({ nodeEngine: "podman" }).notices().join("\n")).not.toContain(notice);
    const without = pool({ nativeHelper: false, nodePath: "/opt/node/bin/node" })
      .notices()
      .filter((n) => n.includes(notice));
    expect(without).toEqual([
      "troupe-slurm-helper was not built (it needs a C compiler and libjansson-dev at `npm run build`): each Slurm member runs troupe's Node.js helper, so every node needs Node.js at /opt/node/bin/node",
    ]);
  });
});
