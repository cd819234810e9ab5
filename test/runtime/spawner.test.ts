/**
 * troupe-spawner (native/spawner.c, sandbox.c) through its Node client, against
 * the real built helper: plain processes with their logs, live output, the
 * status (fd 3) and barrier (fd 4) channels, signals, troupe's own sandbox as
 * root (its read-only mounts, placed files and PID 1's signal forwarding), and
 * what happens when the helper ends or dies.
 */
import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TaskLaunch } from "../../src/runtime/index.js";
import { sandboxSpec } from "../../src/runtime/host/sandbox.js";
import { spawnerDirectives } from "../../src/runtime/host/sandbox-commands.js";
import { hostsText } from "../../src/runtime/host/sandbox-names.js";
import { Spawner } from "../../src/runtime/host/spawner.js";
import { onPath } from "../../src/util/executables.js";
import { ensureSpawnerBuilt, HELPER, isRoot, run, spawnerFixtures, waitFor as waitUntil, type Exit } from "./spawner-fixtures.js";

const { tempDir, newSpawner, closeSpawners, removeDirs } = spawnerFixtures("troupe-spawner");
const waitFor = (condition: () => boolean, what: string, ms = 5000) => waitUntil(condition, what, ms);

beforeAll(ensureSpawnerBuilt);

const hostMounts: string[] = [];
afterEach(() => {
  closeSpawners();
  // Lazily: a sandbox that still holds the mount may be on its way out. Before the directories, which hold the mounts.
  hostMounts
    .splice(0)
    .reverse()
    .forEach((m) => spawnSync("umount", ["--lazy", m]));
  removeDirs();
});

/** A tmpfs mounted at `dir` on the host (made if missing), unmounted after the test. */
function hostTmpfs(dir: string, options = "mode=0755"): string {
  mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", options, "troupe-spawner-test", dir]);
  hostMounts.push(dir);
  return dir;
}

/** A number no other process on the machine has in its command line, for `sleep`. */
const marker = () => `1234.${process.pid}${Math.floor(Math.random() * 1e6)}`;

/** Host PIDs whose command line holds `text` (zombies have none). */
function processesWith(text: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("troupe-spawner: plain processes", () => {
  it("writes stdout and stderr to the log, creating its directory, and reports the exact exit code", async () => {
    const logPath = join(tempDir(), "not", "yet", "there.log");
    const r = run(newSpawner(), { argv: ["sh", "-c", "echo out; echo err >&2; exit 7"], logPath });
    expect(await r.exit).toEqual({ code: 7 });
    expect(readFileSync(logPath, "utf8")).toBe("out\nerr\n");
    expect(r.output().length).toBe(0); // file mode: nothing comes back live
  });

  it("reports a program that cannot start, and a log that cannot be opened, as errors", async () => {
    const dir = tempDir();
    const spawner = newSpawner();
    const missing = run(spawner, { argv: ["/nonexistent/troupe-program"], logPath: join(dir, "a.log") });
    expect(await missing.exit).toEqual({ code: undefined, error: "cannot start /nonexistent/troupe-program: No such file or directory" });
    writeFileSync(join(dir, "file"), "");
    const badLog = run(spawner, { argv: ["true"], logPath: join(dir, "file", "x.log") });
    expect(await badLog.exit).toMatchObject({ code: undefined, error: expect.stringMatching(/^cannot open the log .*Not a directory/) });
    // The helper is still fine afterwards.
    expect(await run(spawner, { argv: ["true"] }).exit).toEqual({ code: 0 });
  });

  it("in pipe mode, sends every byte as output events and in the log, all before the exit", async () => {
    const dir = tempDir();
    const logPath = join(dir, "live.log");
    const script = `head -c 5242880 /dev/urandom | tee ${dir}/expected.bin; echo done >&2; exit 3`;
    const r = run(newSpawner(), { argv: ["sh", "-c", script], logPath, live: true });
    expect(await r.exit).toEqual({ code: 3 });
    const expected = Buffer.concat([readFileSync(join(dir, "expected.bin")), Buffer.from("done\n")]);
    expect(r.output().length).toBe(expected.length);
    expect(sha256(r.output())).toBe(sha256(expected));
    expect(sha256(readFileSync(logPath))).toBe(sha256(expected));
    expect(r.outputAfterExit()).toBe(false);
  });

  it("passes fd 3 bytes as status events and holds the command at fd 4 until release()", async () => {
    const logPath = join(tempDir(), "barrier.log");
    const script = `echo before; echo '{"child-pid": '$$'}' >&3; read x <&4; echo "after $x"; exit 4`;
    let logAtStatus = "";
    const r = run(newSpawner(), { argv: ["sh", "-c", script], logPath }, (_text, proc) => {
      // Give a command that ignored the barrier time to show it, then open it.
      setTimeout(() => ((logAtStatus = readFileSync(logPath, "utf8")), proc.release()), 200);
    });
    expect(await r.exit).toEqual({ code: 4 });
    expect(r.status()).toMatch(/^\{"child-pid": \d+\}\n$/);
    expect(logAtStatus).toBe("before\n");
    expect(readFileSync(logPath, "utf8")).toBe("before\nafter go\n");
  });

  it("started released, runs the command without a release(): the start and its release reach the helper together", async () => {
    const logPath = join(tempDir(), "released.log");
    const script = `read x <&4; echo "after $x"; exit 4`;
    const r = run(newSpawner(), { argv: ["sh", "-c", script], logPath, released: true });
    expect(await r.exit).toEqual({ code: 4 });
    expect(readFileSync(logPath, "utf8")).toBe("after go\n");
    // A release after the end is harmless.
    r.proc.release();
  });

  it.each([
    ["SIGTERM", 143],
    ["SIGKILL", 137],
  ] as const)("ends a sleeping process with %s as 128 + its number; a signal after the end is harmless", async (signal, code) => {
    const spawner = newSpawner();
    const r = run(spawner, { argv: ["sleep", "30"] });
    r.proc.signal(signal);
    expect(await r.exit).toEqual({ code });
    r.proc.signal("SIGKILL");
    r.proc.release();
    expect(await run(spawner, { argv: ["true"] }).exit).toEqual({ code: 0 });
  });

  it("signals a given descendant by its pid", async () => {
    const script = `sleep 30 & echo '{"bg": '$!'}' >&3; wait $!`;
    const r = run(newSpawner(), { argv: ["sh", "-c", script] }, (text, proc) => proc.signal("SIGKILL", JSON.parse(text).bg));
    expect(await r.exit).toEqual({ code: 137 }); // `wait` returns the background job's 128 + 9
  });
});

// strace counts the helper's writes (only the helper's: not its children's), which nothing else could tell apart.
describe.skipIf(!onPath("strace"))("troupe-spawner: its events (strace)", () => {
  it("writes the events of a turn together, whole frames in one write, not four writes per event", async () => {
    const dir = tempDir();
    const trace = join(dir, "trace");
    const wrapper = join(dir, "traced-spawner");
    writeFileSync(wrapper, `#!/bin/sh\nexec strace -q -e trace=write -e signal=none -s 0 -o ${trace} ${HELPER}\n`);
    chmodSync(wrapper, 0o755);
    const spawner = new Spawner(wrapper);
    try {
      // Two processes at once, one released at its start and one after its status: several events a turn.
      const script = `echo '{"child-pid": '$$'}' >&3; read x <&4; echo '{"exit-code": 0}' >&3`;
      const first = run(spawner, { argv: ["sh", "-c", script], logPath: join(dir, "a.log"), released: true });
      const second = run(spawner, { argv: ["sh", "-c", script], logPath: join(dir, "b.log") }, (_text, proc) => proc.release());
      expect(await first.exit).toEqual({ code: 0 });
      expect(await second.exit).toEqual({ code: 0 });
    } finally {
      spawner.close();
    }
    await waitFor(() => existsSync(trace) && readFileSync(trace, "utf8").includes("+++ exited"), "strace to finish");
    // Each process: started, one or two status events (two lines may come in one read), exited: 6 to 8 frames in
    // all, which went out in 4 writes each (24 or more) before, and now at most one write a frame, fewer when a
    // turn had several.
    const writes = readFileSync(trace, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("write(1,"));
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.length).toBeLessThanOrEqual(8);
  });
});

describe("troupe-spawner: the helper's own end", () => {
  it("when the helper dies, reports pending processes and later starts as errors at once", async () => {
    const spawner = newSpawner();
    const helper = (spawner as unknown as { child: ChildProcess }).child;
    // Blocked at the barrier: the helper's death closes fd 4, so this ends by itself.
    const pending = run(spawner, { argv: ["sh", "-c", "echo ready >&3; read x <&4"] }, () => helper.kill("SIGKILL"));
    expect(await pending.exit).toEqual({ code: undefined, error: "troupe-spawner ended unexpectedly (SIGKILL)" });
    expect(await run(spawner, { argv: ["true"] }).exit).toEqual({ code: undefined, error: "troupe-spawner ended unexpectedly (SIGKILL)" });
  });
});

describe.skipIf(!isRoot)("troupe-spawner: own sandbox (root only: it makes namespaces without a user namespace)", () => {
  it("gives the command its hostname, /tmp, /etc/hosts, PID namespace and environment, and passes its exit code", async () => {
    const dir = tempDir();
    const tmpName = `troupe-spawner-test-${marker()}`;
    const hostsBefore = readFileSync("/etc/hosts", "utf8");
    const script = [
      'echo "host=$(hostname)"; echo "pid=$$"; echo "init=$(cat /proc/1/comm)"; echo "pwd=$(pwd)"',
      `echo x > /tmp/${tmpName}; echo "tmp=$(ls -A /tmp)"; echo "hosts=$(cat /etc/hosts)"`,
      "echo \"env=$(tr '\\000' , < /proc/$$/environ)\"; exit 42",
    ].join("; ");
    const directives = ["hostname", "h1", "chdir", `${dir}/out`, "mkdir", `${dir}/out`, "proc", "/proc", "tmpfs", "/tmp"];
    directives.push("ro-data", "hello\n", "/etc/hosts", "env", "PATH=/usr/bin:/bin", "--", "sh", "-c", script);
    const r = run(newSpawner(), { argv: ["sh"], directives, logPath: join(dir, "box.log") }, (_t, proc) => proc.release());
    expect(await r.exit).toEqual({ code: 42 });
    expect(r.status()).toMatch(/^\{"child-pid": \d+\}\n\{"exit-code": 42\}\n$/);
    const seen = Object.fromEntries(
      readFileSync(join(dir, "box.log"), "utf8")
        .trim()
        .split("\n")
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    expect(seen).toEqual({
      host: "h1",
      pid: "2", // the sandbox's PID 1 is the spawner's fork, which ends the namespace with the command
      init: "troupe-spawner",
      pwd: `${dir}/out`,
      tmp: tmpName, // nothing else: the staged /etc/hosts was removed
      hosts: "hello",
      env: "PATH=/usr/bin:/bin,",
    });
    expect(existsSync(`/tmp/${tmpName}`)).toBe(false);
    expect(readFileSync("/etc/hosts", "utf8")).toBe(hostsBefore);
  });

  it("places files: of a new host directory (via sandboxSpec) without creating it on the host", async () => {
    const dir = tempDir();
    const newDir = `/etc/troupe-spawner-test-${marker()}`;
    const launch: TaskLaunch = {
      key: "g/t1/0",
      taskName: "t1",
      groupName: "g",
      retryId: 0,
      image: "alpine",
      // Commands start in / (as most images): the output directory is named.
      argv: ["sh", "-c", `cat ${newDir}/a.conf /etc/hosts; echo "$GREETING" > ${join(dir, "outputs", "t1")}/made-here`],
      env: { GREETING: "hi" },
      files: [{ path: `${newDir}/a.conf`, contents: Buffer.from("conf\n") }],
      outputDir: join(dir, "outputs", "t1"),
      inputDirs: [],
      address: "127.1.0.9",
      hosts: { t1: "127.1.0.9" },
      logPath: join(dir, "logs", "t1.0.log"),
    };
    // The host runtime stages each file's contents; the sandbox binds the staged copy at its path.
    writeFileSync(join(dir, "file.0"), "conf\n");
    const env = { PATH: "/usr/bin:/bin", ...launch.env };
    const plan = {
      dir,
      home: dir,
      hidden: [],
      user: undefined,
      ownSandbox: true,
      hosts: { text: hostsText(launch, false), file: "" },
      stagedFiles: [join(dir, "file.0")],
      netns: false,
      userNamespace: false,
      env,
    };
    const spec = sandboxSpec(launch, plan);
    const r = run(newSpawner(), { argv: launch.argv, directives: spawnerDirectives(spec), logPath: launch.logPath }, (_t, p) =>
      p.release(),
    );
    expect(await r.exit).toEqual({ code: 0 });
    expect(readFileSync(launch.logPath, "utf8")).toMatch(/^conf\n127\.0\.0\.1\tlocalhost\n.*\n127\.1\.0\.9\tt1\.g\.troupe\.internal t1\n$/);
    expect(readFileSync(join(launch.outputDir, "made-here"), "utf8")).toBe("hi\n");
    expect(existsSync(newDir)).toBe(false);
  });

  it("refuses a field with a NUL in it (it would become more fields: a directive, a flag), and a request of too many fields", async () => {
    const dir = tempDir();
    const smuggled = ["proc", "/proc", "env", "X=a\0bind\0/\0/tmp/h", "--", "true"];
    const nul = run(newSpawner(), { argv: ["true"], directives: smuggled, logPath: join(dir, "nul.log") });
    expect(await nul.exit).toEqual({ error: expect.stringMatching(/NUL character/) });
    const many = ["proc", "/proc", ...Array.from({ length: 70_000 }, (_, i) => `env\0X${i}=1`.split("\0")).flat(), "--", "true"];
    const tooMany = run(newSpawner(), { argv: ["true"], directives: many, logPath: join(dir, "many.log") });
    expect(await tooMany.exit).toEqual({ error: expect.stringMatching(/more than the 65536 troupe-spawner takes/) });
  });

  it("started released, runs the sandbox's command at once; a setup failure is reported as without it", async () => {
    const dir = tempDir();
    const ran = run(newSpawner(), {
      argv: ["sh"],
      directives: ["proc", "/proc", "--", "sh", "-c", "echo ran; exit 3"],
      logPath: join(dir, "ran.log"),
      released: true,
    });
    expect(await ran.exit).toEqual({ code: 3 });
    expect(ran.status()).toMatch(/^\{"child-pid": \d+\}\n\{"exit-code": 3\}\n$/);
    expect(readFileSync(join(dir, "ran.log"), "utf8")).toBe("ran\n");
    const directives = ["proc", "/proc", "bind", `${dir}/no-such-source`, `${dir}/target`, "--", "true"];
    const failed = run(newSpawner(), { argv: ["true"], directives, logPath: join(dir, "fail.log"), released: true });
    expect(await failed.exit).toEqual({ code: 1 });
    expect(failed.status()).toMatch(/^\{"child-pid": \d+\}\n$/);
    expect(readFileSync(join(dir, "fail.log"), "utf8")).toMatch(/^troupe sandbox: cannot bind .*no-such-source: No such file/);
  });

  it("reports a setup failure in the log, without an exit-code, before any mount reaches the host", async () => {
    const dir = tempDir();
    const directives = ["proc", "/proc", "bind", `${dir}/no-such-source`, `${dir}/target`, "--", "true"];
    const r = run(newSpawner(), { argv: ["true"], directives, logPath: join(dir, "fail.log") });
    expect(await r.exit).toEqual({ code: 1 }); // without release(): setup happens before the barrier
    expect(r.status()).toMatch(/^\{"child-pid": \d+\}\n$/);
    expect(readFileSync(join(dir, "fail.log"), "utf8")).toMatch(/^troupe sandbox: cannot bind .*no-such-source: No such file/);
    expect(existsSync(join(dir, "target"))).toBe(false);
  });

  it("ends what the command left in the background when the command ends", async () => {
    const sleep = marker();
    const directives = ["proc", "/proc", "--", "sh", "-c", `sleep ${sleep} & sleep 0.2; exit 0`];
    const r = run(newSpawner(), { argv: ["sh"], directives, logPath: join(tempDir(), "bg.log") }, (_t, p) => p.release());
    try {
      expect(await r.exit).toEqual({ code: 0 });
      expect(processesWith(sleep)).toEqual([]);
    } finally {
      processesWith(sleep).forEach((pid) => process.kill(pid, "SIGKILL"));
    }
  });

  it("close() ends the helper, reports pending processes, and their sandboxes die with it", async () => {
    const spawner = newSpawner();
    const sleep = marker();
    const directives = ["proc", "/proc", "--", "sleep", sleep];
    const r = run(spawner, { argv: ["sleep"], directives, logPath: join(tempDir(), "close.log") }, (_t, p) => p.release());
    try {
      await waitFor(() => processesWith(sleep).length === 1, "the sandboxed sleep to start");
      spawner.close();
      expect(await r.exit).toEqual({ code: undefined, error: "the host runtime was closed" });
      await waitFor(() => processesWith(sleep).length === 0, "the sandboxed sleep to die with the helper");
    } finally {
      processesWith(sleep).forEach((pid) => process.kill(pid, "SIGKILL"));
    }
  });

  it("starts when its parent is PID 1 (troupe as a container's init process)", () => {
    const dir = tempDir();
    const payload = Buffer.from(["spawn", "1", "file", `${dir}/pid1.log`, "true", ""].join("\0"));
    const header = Buffer.alloc(4);
    header.writeUInt32LE(payload.length);
    writeFileSync(join(dir, "request"), Buffer.concat([header, payload]));
    // In a new PID namespace sh is PID 1, and the pipeline's helper its child.
    const r = spawnSync("unshare", ["--pid", "--fork", "sh", "-c", 'cat "$1" | "$2"', "sh", join(dir, "request"), HELPER], {
      timeout: 10_000,
    });
    expect(r.stdout.toString("latin1")).toContain("started\u00001\u0000");
  });
});

/** `sh -c script` in troupe-spawner's own sandbox with these directives (and a /proc), released at once: its exit and its log. */
async function inSandbox(directives: string[], script: string): Promise<{ exit: Exit; log: string }> {
  const logPath = join(tempDir(), "box.log");
  const start = { argv: ["sh"], directives: [...directives, "proc", "/proc", "--", "sh", "-c", script], logPath };
  const exit = await run(newSpawner(), start, (_t, p) => p.release()).exit;
  return { exit, log: readFileSync(logPath, "utf8") };
}

describe.skipIf(!isRoot)("troupe-spawner: own sandbox, read-only mounts (root only: it mounts tmpfs on the host)", () => {
  it("ro-bind is read-only all the way down: a mount below the source is read-only too, and nothing reaches the host", async () => {
    const dir = tempDir();
    const below = hostTmpfs(join(dir, "source", "sub"));
    writeFileSync(join(below, "seen"), "from the host's tmpfs\n");
    const target = join(dir, "target");
    const script = `cat ${target}/sub/seen; touch ${target}/x ${target}/sub/x ${target}/sub/seen; echo "touch=$?"`;
    const { exit, log } = await inSandbox(["ro-bind", join(dir, "source"), target], script);
    expect(exit).toEqual({ code: 0 });
    expect(log.split("\n")).toEqual([
      "from the host's tmpfs", // the tmpfs below the source is there, inside the sandbox
      `touch: cannot touch '${target}/x': Read-only file system`,
      `touch: cannot touch '${target}/sub/x': Read-only file system`,
      `touch: cannot touch '${target}/sub/seen': Read-only file system`,
      "touch=1",
      "",
    ]);
    expect(readdirSync(join(dir, "source"))).toEqual(["sub"]);
    expect(readdirSync(below)).toEqual(["seen"]);
  });

  it("ro-bind keeps the source mount's nosuid, nodev and noexec when it makes it read-only", async () => {
    const dir = tempDir();
    const source = hostTmpfs(join(dir, "source"), "nosuid,nodev,noexec,mode=0755");
    writeFileSync(join(source, "run.sh"), "#!/bin/sh\necho ran\n", { mode: 0o755 });
    const target = join(dir, "target");
    // Field 6 of mountinfo: the mount's own options.
    const script = `grep " ${target} " /proc/self/mountinfo | cut -d" " -f6; ${target}/run.sh 2>/dev/null || echo "run.sh=$?"`;
    const { exit, log } = await inSandbox(["ro-bind", source, target], script);
    expect(exit).toEqual({ code: 0 });
    const [options, ran, ...rest] = log.split("\n");
    expect(options!.split(",")).toEqual(expect.arrayContaining(["ro", "nosuid", "nodev", "noexec"]));
    expect(ran).toBe("run.sh=126"); // noexec: found, not run
    expect(rest).toEqual([""]);
  });
});

describe.skipIf(!isRoot)("troupe-spawner: own sandbox, placed data and signals (root only: namespaces without a user namespace)", () => {
  // Without su the file's mode is still checked, but no other user reads it.
  const su = ["/usr/bin/su", "/bin/su"].some((path) => existsSync(path));
  it("ro-data places a file of mode 0644, which a user other than root can read", async () => {
    const script = `stat -c %a /etc/hosts${su ? "; su nobody -s /bin/sh -c 'cat /etc/hosts'" : ""}`;
    const { exit, log } = await inSandbox(["tmpfs", "/tmp", "ro-data", "hello\n", "/etc/hosts"], script);
    expect({ exit, log }).toEqual({ exit: { code: 0 }, log: su ? "644\nhello\n" : "644\n" });
  });

  it.each(["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const)(
    "%s to the sandbox's PID 1 reaches the command (PID 1's child), which ends as it chooses",
    async (signal) => {
      const logPath = join(tempDir(), "signal.log");
      const name = signal.slice(3);
      const tag = marker(); // in the shell's command line, to find it if it outlives the test
      const script = `trap "echo got ${name}; exit 5" ${name}; echo ready; while :; do sleep 0.05; done # ${tag}`;
      const directives = ["proc", "/proc", "--", "sh", "-c", script];
      const r = run(newSpawner(), { argv: ["sh"], directives, logPath }, (_t, p) => p.release());
      try {
        await waitFor(() => existsSync(logPath) && readFileSync(logPath, "utf8") === "ready\n", "the command to set its trap");
        r.proc.signal(signal); // no pid: the spawned process, which is the sandbox's PID 1
        expect(await r.exit).toEqual({ code: 5 });
        expect(r.status()).toMatch(/^\{"child-pid": \d+\}\n\{"exit-code": 5\}\n$/);
        expect(readFileSync(logPath, "utf8")).toBe(`ready\ngot ${name}\n`);
      } finally {
        processesWith(tag).forEach((pid) => process.kill(pid, "SIGKILL"));
      }
    },
  );
});
