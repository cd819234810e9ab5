/**
 * Kept tasks (native/keeper.c, src/runtime/kept-task.ts) against the real
 * troupe-spawner: a task under its keeper reports what any task reports while
 * troupe is there, outlives troupe's helper once released, is stopped if the
 * helper goes before its release, takes signals through its control FIFO, and
 * leaves its exit code in its state directory for a later troupe to read.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TaskLaunch } from "../../src/runtime/index.js";
import { sandboxSpec } from "../../src/runtime/host/sandbox.js";
import { spawnerDirectives } from "../../src/runtime/host/sandbox-commands.js";
import { hostsText } from "../../src/runtime/host/sandbox-names.js";
import type { SandboxStart } from "../../src/runtime/host/sandbox-process.js";
import type { Spawner } from "../../src/runtime/host/spawner.js";
import { endKeptTasks, keeperAlive, KeptMember, readKeptExit, signalKept } from "../../src/runtime/kept-task.js";
import { ensureSpawnerBuilt, isRoot, spawnerFixtures, waitFor as waitUntil } from "./spawner-fixtures.js";

const { tempDir, newSpawner, closeSpawners, removeDirs } = spawnerFixtures("troupe-keeper");
const waitFor = (condition: () => boolean, what: string, ms = 10_000) => waitUntil(condition, what, ms);

beforeAll(ensureSpawnerBuilt);

/** State directories of keepers started by a test: any still alive is killed through its FIFO. */
const kept: string[] = [];
afterEach(async () => {
  closeSpawners();
  for (const dir of kept.splice(0)) {
    signalKept(dir, 9);
    await waitFor(() => !keeperAlive(dir), "the keeper to end").catch(() => undefined);
  }
  removeDirs();
});

/** Starts a kept process; resolves its exit as the spawner reports it. */
function startKept(spawner: Spawner, start: Partial<SandboxStart> & { keep: string }) {
  kept.push(start.keep);
  let status = "";
  let statusSeen!: () => void;
  const firstStatus = new Promise<void>((resolve) => (statusSeen = resolve));
  let proc!: ReturnType<Spawner["start"]>;
  const exit = new Promise<{ code: number | undefined; error?: string }>((resolve) => {
    proc = spawner.start(
      { argv: [], logPath: "/dev/null", live: false, ...start },
      {
        status: (chunk) => ((status += chunk.toString()), statusSeen()),
        exit: (code, error) => resolve(error === undefined ? { code } : { code, error }),
      },
    );
  });
  return { proc, exit, status: () => status, firstStatus };
}

const logOf = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

const helperOf = (spawner: Spawner) => (spawner as unknown as { child: ChildProcess }).child;

describe("kept tasks: a plain command under its keeper", () => {
  it("reports its exit code to the spawner as usual, writes it to the state directory, and removes its FIFO", async () => {
    const dir = tempDir();
    const keep = join(dir, "state");
    const logPath = join(dir, "task.log");
    const r = startKept(newSpawner(), { argv: ["sh", "-c", "echo out; echo err >&2; exit 7"], logPath, keep });
    r.proc.release();
    expect(await r.exit).toEqual({ code: 7 });
    expect(readFileSync(logPath, "utf8")).toBe("out\nerr\n");
    expect(readKeptExit(keep)).toEqual({ code: 7, released: true });
    expect(existsSync(join(keep, "control"))).toBe(false);
    expect(keeperAlive(keep)).toBe(false);
  });

  it("relays fd 3 and the barrier: the command waits for release()", async () => {
    const dir = tempDir();
    const keep = join(dir, "state");
    const logPath = join(dir, "task.log");
    const script = `echo '{"child-pid": '$$'}' >&3; read x <&4; echo "after $x"; exit 4`;
    const r = startKept(newSpawner(), { argv: ["sh", "-c", script], logPath, keep });
    await r.firstStatus;
    expect(r.status()).toMatch(/^\{"child-pid": \d+\}\n$/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readFileSync(logPath, "utf8")).toBe("");
    r.proc.release();
    expect(await r.exit).toEqual({ code: 4 });
    expect(readFileSync(logPath, "utf8")).toBe("after go\n");
  });

  it("outlives the spawner once released, and records how it ended", async () => {
    const dir = tempDir();
    const keep = join(dir, "state");
    const logPath = join(dir, "task.log");
    const spawner = newSpawner();
    const r = startKept(spawner, { argv: ["sh", "-c", `echo begun; sleep 1; echo done; exit 5`], logPath, keep });
    r.proc.release();
    await waitFor(() => logOf(logPath).includes("begun"), "the command to start");
    helperOf(spawner).kill("SIGKILL");
    expect(await r.exit).toMatchObject({ code: undefined, error: expect.stringMatching(/troupe-spawner ended unexpectedly/) });
    expect(keeperAlive(keep)).toBe(true);
    await waitFor(() => readKeptExit(keep) !== undefined, "the exit record");
    expect(readKeptExit(keep)).toEqual({ code: 5, released: true });
    expect(readFileSync(logPath, "utf8")).toBe("begun\ndone\n");
  });

  it("stops a command the spawner never released when the spawner goes (SIGTERM), and records released: false", async () => {
    const dir = tempDir();
    const keep = join(dir, "state");
    const logPath = join(dir, "task.log");
    const spawner = newSpawner();
    const script = `trap 'echo terminated; exit 143' TERM; echo waiting; while :; do sleep 0.05; done`;
    startKept(spawner, { argv: ["sh", "-c", script], logPath, keep });
    await waitFor(() => logOf(logPath).includes("waiting"), "the command");
    spawner.close();
    await waitFor(() => readKeptExit(keep) !== undefined, "the exit record");
    expect(readKeptExit(keep)).toEqual({ code: 143, released: false });
    expect(readFileSync(logPath, "utf8")).toBe("waiting\nterminated\n");
  });

  it("takes signals through its control FIFO, from a troupe that did not start it", async () => {
    const dir = tempDir();
    const keep = join(dir, "state");
    const spawner = newSpawner();
    const r = startKept(spawner, { argv: ["sleep", "30"], logPath: join(dir, "task.log"), keep });
    r.proc.release();
    await waitFor(() => keeperAlive(keep), "the keeper");
    spawner.close();
    expect(signalKept(keep, 15)).toBe(true);
    await waitFor(() => readKeptExit(keep) !== undefined, "the exit record");
    expect(readKeptExit(keep)).toEqual({ code: 143, released: true });
    expect(signalKept(keep, 15)).toBe(false);
  });
});

describe("kept tasks: re-attaching (KeptMember)", () => {
  const launch = { key: "g/t/0", taskName: "t", retryId: 0 } as TaskLaunch;

  it("follows a running kept task to its end, and stops one gracefully through the keeper", async () => {
    const dir = tempDir();
    const spawner = newSpawner();
    const ends = startKept(spawner, { argv: ["sh", "-c", "sleep 0.5; exit 3"], logPath: join(dir, "a.log"), keep: join(dir, "a") });
    const stops = startKept(spawner, {
      argv: ["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"],
      logPath: join(dir, "b.log"),
      keep: join(dir, "b"),
    });
    ends.proc.release();
    stops.proc.release();
    await waitFor(() => keeperAlive(join(dir, "a")) && keeperAlive(join(dir, "b")), "the keepers");
    helperOf(spawner).kill("SIGKILL");

    const a = KeptMember.attach(launch, join(dir, "a"))!;
    const b = KeptMember.attach(launch, join(dir, "b"))!;
    expect(await a.exited).toEqual({ code: 3 });
    await b.stop(5_000);
    expect(await b.exited).toEqual({ code: 42 });
  });

  it("finds an ended task's record, and nothing where no keeper ever was or where it was killed", async () => {
    const dir = tempDir();
    const spawner = newSpawner();
    const r = startKept(spawner, { argv: ["true"], logPath: join(dir, "a.log"), keep: join(dir, "a") });
    r.proc.release();
    await r.exit;
    expect(await KeptMember.attach(launch, join(dir, "a"))!.exited).toEqual({ code: 0 });
    expect(KeptMember.attach(launch, join(dir, "never"))).toBeUndefined();

    const killed = startKept(spawner, { argv: ["sleep", "30"], logPath: join(dir, "k.log"), keep: join(dir, "k") });
    killed.proc.release();
    await waitFor(() => keeperAlive(join(dir, "k")), "the keeper");
    const member = KeptMember.attach(launch, join(dir, "k"))!;
    killed.proc.signal("SIGKILL"); // the keeper itself: its task dies with it, no record is written
    expect(await member.exited).toMatchObject({ lost: expect.stringMatching(/keeper ended without recording/) });
  });
});

describe("kept tasks: what an engine's stop leaves", () => {
  const launch = { key: "g/t/0", taskName: "t", retryId: 0 } as TaskLaunch;

  it("ends a task the engine's stop did not end (its container not made yet) through its keeper", async () => {
    const dir = tempDir();
    const spawner = newSpawner();
    const r = startKept(spawner, { argv: ["sleep", "60"], logPath: join(dir, "a.log"), keep: join(dir, "a") });
    r.proc.release();
    await waitFor(() => keeperAlive(join(dir, "a")), "the keeper");
    helperOf(spawner).kill("SIGKILL");
    let engineStops = 0;
    // The engine knows no such container yet: its stop does nothing.
    const member = KeptMember.attach(launch, join(dir, "a"), { stop: async () => void engineStops++, stopConfirmMs: 300 })!;
    const started = Date.now();
    await member.stop(0);
    expect(engineStops).toBe(1);
    expect(await member.exited).toEqual({ code: 137 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(keeperAlive(join(dir, "a"))).toBe(false);
  });

  // A `podman run` that never returns once its container is gone cannot be had on demand: the keeper here waits on
  // `sleep`, and `present` says what `podman container exists` would (the container runtime's, in container-runtime.ts).
  it("ends, lost and within seconds, an attempt whose keeper lives on while its task is gone (twice in a row), and kills the keeper", async () => {
    const dir = tempDir();
    const spawner = newSpawner();
    const r = startKept(spawner, { argv: ["sleep", "600"], logPath: join(dir, "a.log"), keep: join(dir, "a") });
    r.proc.release();
    await waitFor(() => keeperAlive(join(dir, "a")), "the keeper");
    helperOf(spawner).kill("SIGKILL");
    const answers: boolean[] = [];
    const present = async () => (answers.push(false), false);
    const member = KeptMember.attach(launch, join(dir, "a"), { present, presenceMs: 100, what: "its container is gone" })!;
    const started = Date.now();
    expect(await member.exited).toEqual({
      code: 137,
      lost: "its keeper waited on a task that is gone (its container is gone): the keeper was killed",
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(answers.length).toBe(2);
    await waitFor(() => !keeperAlive(join(dir, "a")), "the keeper to end");
    expect(readKeptExit(join(dir, "a"))).toEqual({ code: 137, released: true });
  });

  it("ends such an attempt as its task said it ended, where it did (a container's verdict), and never on one missing look or no answer", async () => {
    const dir = tempDir();
    const spawner = newSpawner();
    for (const name of ["said", "flaky"])
      startKept(spawner, { argv: ["sleep", "600"], logPath: join(dir, `${name}.log`), keep: join(dir, name) }).proc.release();
    await waitFor(() => keeperAlive(join(dir, "said")) && keeperAlive(join(dir, "flaky")), "the keepers");
    helperOf(spawner).kill("SIGKILL");
    const said = KeptMember.attach(launch, join(dir, "said"), {
      present: async () => false,
      presenceMs: 100,
      knownEnd: () => ({ code: 3 }),
    })!;
    expect(await said.exited).toEqual({ code: 3 });
    // Missing, there, unanswered, missing, ...: never twice missing in a row.
    const looks = [false, true, undefined, false, undefined];
    let ended = false;
    const flaky = KeptMember.attach(launch, join(dir, "flaky"), { present: async () => looks.shift() ?? true, presenceMs: 100 })!;
    void flaky.exited.then(() => (ended = true));
    await waitFor(() => looks.length === 0, "every look", 20_000);
    expect(ended).toBe(false);
    expect(keeperAlive(join(dir, "flaky"))).toBe(true);
    await flaky.stop(0);
    expect(await flaky.exited).toEqual({ code: 137 });
  });

  it("ends every kept task of a run still alive, and returns once their keepers are gone", async () => {
    const dir = tempDir();
    const spawner = newSpawner();
    const keep = (name: string) => join(dir, "kept", name);
    for (const name of ["lead.0", "peer.0"])
      startKept(spawner, { argv: ["sleep", "60"], logPath: join(dir, `${name}.log`), keep: keep(name) }).proc.release();
    startKept(spawner, { argv: ["true"], logPath: join(dir, "done.log"), keep: keep("done.0") }).proc.release();
    await waitFor(
      () => keeperAlive(keep("lead.0")) && keeperAlive(keep("peer.0")) && readKeptExit(keep("done.0")) !== undefined,
      "the keepers",
    );
    await endKeptTasks(dir);
    expect([keep("lead.0"), keep("peer.0")].map(keeperAlive)).toEqual([false, false]);
    expect(readKeptExit(keep("lead.0"))).toEqual({ code: 137, released: true });
    expect(readKeptExit(keep("done.0"))).toEqual({ code: 0, released: true });
    await endKeptTasks(join(dir, "nothing-kept-here")); // a run without kept tasks: nothing to do
  });
});

describe.runIf(isRoot)("kept tasks: troupe's own sandbox under its keeper (root)", () => {
  it("relays the sandbox's status lines, records the command's exit code, and survives the spawner", async () => {
    const dir = tempDir();
    const keep = join(dir, "state");
    const logPath = join(dir, "task.log");
    const task = {
      key: "g/t/0",
      taskName: "t",
      groupName: "g",
      retryId: 0,
      image: "alpine:3.18",
      argv: ["sh", "-c", "echo in-sandbox; sleep 0.5; exit 9"],
      env: {},
      files: [],
      outputDir: join(dir, "out"),
      inputDirs: [],
      address: "127.0.0.1",
      hosts: { t: "127.0.0.1" },
      logPath,
    } satisfies TaskLaunch;
    const spec = sandboxSpec(task, {
      dir: join(dir, "sandbox"),
      home: dir,
      hidden: [],
      user: undefined,
      ownSandbox: true,
      hosts: { text: hostsText(task, false), file: join(dir, "sandbox", "hosts") },
      stagedFiles: [],
      netns: false,
      userNamespace: false,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    const spawner = newSpawner();
    const r = startKept(spawner, { argv: task.argv, directives: spawnerDirectives(spec), logPath, keep });
    await r.firstStatus;
    expect(r.status()).toMatch(/^\{"child-pid": \d+\}\n/);
    r.proc.release();
    await waitFor(() => logOf(logPath).includes("in-sandbox"), "the command");
    helperOf(spawner).kill("SIGKILL");
    await waitFor(() => readKeptExit(keep) !== undefined, "the exit record");
    expect(readKeptExit(keep)).toEqual({ code: 9, released: true });
  });
});
