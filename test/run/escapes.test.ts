/**
 * Acceptance: a host-runtime task cannot touch the host. One workflow whose
 * task tries each escape an attacker tried (write /root and /etc, read
 * /etc/shadow, open troupe's database, rewrite another run's output and log,
 * unmount an input and write through it, kill a host process through
 * cgroup.kill or a signal, mknod, mount, see the block devices and
 * /run/netns), run with every sandbox builder and through a server with an
 * ordinary token: every attempt fails, and the host is unchanged. What tasks
 * need keeps working: their output, /tmp, files: (new ones under /etc too)
 * and their inputs.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../server/helpers.js";
import { IS_ROOT, SANDBOX_BUILDERS, TestHome, describeRun, ensureBuilt, random, runJson, taskOf, troupe } from "./helpers.js";

const tag = random();
let home: TestHome;
/** A troupe home outside /tmp (a task's /tmp is private anyway): what must be hidden is hidden by the sandbox itself. */
let troupeHome: string;
/** Another run of the home a task runs from, whose output and log it must not reach. */
interface Victim {
  home: string;
  runId: string;
  outputFile: string;
  log: string;
  hashes: Record<string, string>;
}
let victim: Victim;
let sentinel: ChildProcess;
const cgroup = `/sys/fs/cgroup/unified/troupe-escape-${tag}`;
const netns = `troupe-escape-${tag}`;
const userRuntimeDir = `/run/user/troupe-escape-${tag}`;
const hostPaths = [`/root/troupe-escape-${tag}`, `/etc/troupe-escape-${tag}`, `/etc/troupe-file-${tag}`];

const hash = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const NOBODY = 65534;
const VICTIM = `workflow:\n  name: victim\n  tasks:\n  - name: v\n    image: alpine\n    command: ["sh", "-c", "echo original > {{output}}/kept; echo logged"]\n`;

function victimOf(home: string, runId: string): Victim {
  const outputFile = path.join(home, "runs", runId, "outputs", "v", "0", "kept");
  const log = path.join(home, "runs", runId, "logs", "v.0.log");
  return { home, runId, outputFile, log, hashes: { [outputFile]: hash(outputFile), [log]: hash(log) } };
}

/** Each attempt prints `blocked NAME` when it fails, `ESCAPED NAME` when it works. */
function escapeWorkflow(victim: Victim): string {
  const attempts: Array<[string, string]> = [
    ["uid-0", "test $(id -u) = 0"],
    ["write-root", `echo x > /root/troupe-escape-${tag}`],
    ["write-etc", `echo x > /etc/troupe-escape-${tag}`],
    ["read-shadow", "cat /etc/shadow"],
    ["open-database", `cat ${victim.home}/troupe.db`],
    ["list-home", `ls ${victim.home} ${victim.home}/runs | grep -e troupe.db -e ${victim.runId}`],
    ["write-other-output", `echo forged > ${victim.outputFile}`],
    ["write-other-log", `echo forged >> ${victim.log}`],
    ["umount-input", "umount {{input:0}} && echo forged > {{input:0}}/made"],
    ["write-input", "echo forged > {{input:0}}/made"],
    ["cgroup-kill", `echo 1 > ${cgroup}/cgroup.kill`],
    ["kill-host-process", `kill -9 ${sentinel.pid}`],
    ["mknod", "mknod /tmp/disk b 254 0"],
    ["mount", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"],
    ["remount-root", "mount -o remount,rw /"],
    ["block-devices", "ls /dev | grep -E '^(sd|vd|nvme|loop|dm-|mem|kmsg)'"],
    ["run-netns", "ls /run/netns | grep ."],
    ["write-sysfs", "echo 1 > /sys/kernel/mm/ksm/run"],
    ["capabilities", "grep -E '^Cap(Prm|Eff|Bnd):' /proc/self/status | grep -v 0000000000000000"],
    ["daemon-sockets", `ls /run/user | grep troupe-escape-${tag}`],
  ];
  const script = [
    'try_() { name=$1; shift; if sh -c "$*" >/dev/null 2>&1; then echo "ESCAPED $name"; else echo "blocked $name"; fi; }',
    ...attempts.map(([name, command]) => `try_ ${name} ${JSON.stringify(command)}`),
    // What a task may do, all of it.
    "echo mine > {{output}}/result && cat {{output}}/result",
    "echo scratch > /tmp/scratch && cat /tmp/scratch",
    `echo appended >> /etc/troupe-file-${tag} && cat /etc/troupe-file-${tag}`,
    "cat {{input:0}}/made-upstream",
    "grep -q NoNewPrivs:.*1 /proc/self/status && echo no-new-privs",
  ].join("\n");
  return `workflow:
  name: escape-${tag}
  groups:
  - name: upstream
    tasks:
    - name: maker
      lead: true
      image: alpine:3.18
      # Also a stand-in setpriv that skips to the command: run as root if bwrap looked it up on the task's PATH.
      command: ["sh", "-c"]
      args:
      - |
        echo upstream > {{output}}/made-upstream
        printf '#!/bin/sh\\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\\n' > {{output}}/setpriv
        chmod 755 {{output}}/setpriv
  - name: attack
    tasks:
    - name: prober
      lead: true
      image: alpine:3.18
      inputs:
      - task: maker
      environment:
        PATH: "{{input:0}}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
      files:
      - path: /etc/troupe-file-${tag}
        contents: "given\\n"
      command: ["sh", "-c"]
      args:
      - |
${script
  .split("\n")
  .map((line) => `        ${line}`)
  .join("\n")}
`;
}

function expectContained(log: string): void {
  const escaped = log.split("\n").filter((line) => line.startsWith("ESCAPED"));
  expect(escaped, log).toEqual([]);
  expect(log.match(/^blocked /gm)?.length, log).toBe(20);
  for (const line of ["mine", "scratch", "given", "appended", "upstream", "no-new-privs"])
    expect(log).toMatch(new RegExp(`^${line}$`, "m"));
}

function expectHostUnchanged(victim: Victim): void {
  for (const file of hostPaths) expect(fs.existsSync(file), file).toBe(false);
  for (const [file, digest] of Object.entries(victim.hashes)) expect(hash(file), file).toBe(digest);
  expect(sentinel.exitCode, "the host process a task tried to kill").toBeNull();
  expect(sentinel.signalCode).toBeNull();
  expect(fs.existsSync(`/run/netns/${netns}`)).toBe(true);
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  troupeHome = home.outsideTmp();
  // Another run of this home, whose output and log a task must not reach.
  const run = await runJson(home.spec("victim", VICTIM), { home: troupeHome, isolation: "netns" });
  expect(run.code, describeRun(run)).toBe(0);
  victim = victimOf(troupeHome, run.record.id);
  // A host process in a cgroup of its own, and a network namespace of the host's.
  sentinel = spawn("sleep", ["600"], { stdio: "ignore" });
  fs.mkdirSync(cgroup);
  fs.writeFileSync(path.join(cgroup, "cgroup.procs"), String(sentinel.pid));
  execFileSync("ip", ["netns", "add", netns]);
  // Where daemons' sockets live (a user's podman, systemd's bus): what a task must not reach.
  fs.mkdirSync(userRuntimeDir, { recursive: true });
}, 200_000);

afterAll(() => {
  sentinel?.kill("SIGKILL");
  try {
    fs.rmdirSync(cgroup);
  } catch {
    // still held by the sentinel for a moment: once more after it is reaped
    setTimeout(() => fs.rmSync(cgroup, { recursive: true, force: true }), 200);
  }
  execFileSync("ip", ["netns", "delete", netns], { stdio: "ignore" });
  fs.rmSync(userRuntimeDir, { recursive: true, force: true });
  for (const file of hostPaths) fs.rmSync(file, { force: true });
  home?.remove();
});

describe.skipIf(!IS_ROOT)("a host task cannot touch the host (as root, which is where it could)", () => {
  for (const builder of SANDBOX_BUILDERS) {
    for (const isolation of ["netns", "none"] as const) {
      it(`sandboxes by ${builder.name}, --isolation ${isolation}: every escape fails, the host is unchanged`, async () => {
        const file = home.spec("escape", escapeWorkflow(victim));
        const run = await runJson(file, { home: troupeHome, isolation, env: builder.env });
        expect(run.stderr).toMatch(builder.firstLine);
        expect(run.code, describeRun(run)).toBe(0);
        const log = fs.readFileSync(path.join(troupeHome, "runs", run.record.id, "logs", "prober.0.log"), "utf8");
        expectContained(log);
        expectHostUnchanged(victim);
        // What the task wrote stays troupe's to read and remove.
        const output = path.join(troupeHome, "runs", run.record.id, "outputs", "prober", "0");
        expect(fs.readFileSync(path.join(output, "result"), "utf8")).toBe("mine\n");
        fs.rmSync(output, { recursive: true });
        expect(taskOf(run.record, "prober").status).toBe("COMPLETED");
      });
    }
  }

  it("troupe itself run by an unprivileged user (bubblewrap in a user namespace): the same", async () => {
    // A home of that user's own, with a run of its own in it that the task must not reach either.
    const own = home.outsideTmp();
    fs.chownSync(own, NOBODY, NOBODY);
    const options = { home: path.join(own, "home"), isolation: "none" as const, asUser: NOBODY };
    const specs = home.outsideTmp();
    const spec = (name: string, text: string) => {
      const file = path.join(specs, `${name}.yaml`);
      fs.writeFileSync(file, text);
      return file;
    };
    const first = await runJson(spec("victim", VICTIM), options);
    expect(first.code, describeRun(first)).toBe(0);
    const ownVictim = victimOf(options.home, first.record.id);
    const run = await runJson(spec("escape", escapeWorkflow(ownVictim)), options);
    expect(run.stderr).toMatch(/sandboxes: bubblewrap/);
    expect(run.code, describeRun(run)).toBe(0);
    expectContained(fs.readFileSync(path.join(options.home, "runs", run.record.id, "logs", "prober.0.log"), "utf8"));
    expectHostUnchanged(ownVictim);
  });

  it("through a server with the host runtime and an ordinary token: the same, and its database stays out of reach", async () => {
    const serverHome = home.outsideTmp();
    const made = await troupe(["server", "token", "create", "mallory", "--home", serverHome], { home: troupeHome });
    expect(made.code, made.stderr).toBe(0);
    const token = made.stdout.trim();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const server = await startServer(serverHome, ["--runtime", "host"]);
    const submit = async (spec: string) => {
      const submitted = await fetch(`${server.url}/api/pool/default/workflow`, { method: "POST", headers, body: JSON.stringify({ spec }) });
      expect(submitted.status).toBe(201);
      const { id } = (await submitted.json()) as { id: string };
      let status = "";
      for (let i = 0; i < 300 && !/^(COMPLETED|FAILED)/.test(status); i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = ((await (await fetch(`${server.url}/api/workflow/${id}`, { headers })).json()) as { status: string }).status;
      }
      expect(status).toBe("COMPLETED");
      return id;
    };
    try {
      const database = path.join(serverHome, "troupe.db");
      const tokens = () => execFileSync("sqlite3", [database, "select count(*) from tokens"]).toString();
      const tokensBefore = tokens();
      // Another user's run of the server, as far as the task can tell.
      const serverVictim = victimOf(serverHome, await submit(VICTIM));
      const id = await submit(escapeWorkflow(serverVictim));
      expectContained(await (await fetch(`${server.url}/api/workflow/${id}/logs?task=prober`, { headers })).text());
      expectHostUnchanged(serverVictim);
      expect(tokens()).toBe(tokensBefore);
    } finally {
      await server.stop();
    }
  });
});

describe.skipIf(!IS_ROOT)("files: placed as root", () => {
  it("never through a symlink on the host (as one an earlier task could leave)", async () => {
    const dir = home.outsideTmp();
    fs.symlinkSync("/dev", path.join(dir, "lnk"));
    const through = home.spec(
      "through-link",
      `workflow:\n  name: link\n  tasks:\n  - name: l\n    image: alpine\n    files:\n    - path: ${dir}/lnk/troupe-new\n      contents: x\n    command: ["true"]\n`,
    );
    const run = await runJson(through, { home: troupeHome, isolation: "none" });
    expect(taskOf(run.record, "l").status).toBe("FAILED_START_ERROR");
    expect(run.stderr + run.stdout).toMatch(/lnk is a symbolic link \(to \/dev\) on this host/);
    expect(fs.existsSync("/dev/troupe-new")).toBe(false);
  });
});

describe.skipIf(!IS_ROOT)("privileged tasks", () => {
  const privileged = () =>
    home.spec(
      "privileged",
      `workflow:\n  name: priv\n  tasks:\n  - name: p\n    image: alpine\n    privileged: true\n    command: ["sh", "-c", "id -u"]\n`,
    );

  it("are refused unless the pool allows them, saying so", async () => {
    const result = await troupe(["run", privileged(), "--isolation", "none"], { home: troupeHome });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/E_NOT_ALLOWED: task p asks for privileged: true, which the pool of troupe run does not allow/);
  });

  it("run as root where allowed; --task-user picks the user of the others", async () => {
    const allowed = await runJson(privileged(), { home: troupeHome, isolation: "none", extra: ["--allow-privileged"] });
    expect(allowed.code, describeRun(allowed)).toBe(0);
    expect(fs.readFileSync(path.join(troupeHome, "runs", allowed.record.id, "logs", "p.0.log"), "utf8")).toBe("0\n");
    const plain = home.spec(
      "user",
      `workflow:\n  name: user\n  tasks:\n  - name: u\n    image: alpine\n    command: ["sh", "-c", "id -u; id -g"]\n`,
    );
    const run = await runJson(plain, { home: troupeHome, isolation: "none", extra: ["--task-user", "4242:4343"] });
    expect(run.code, describeRun(run)).toBe(0);
    expect(fs.readFileSync(path.join(troupeHome, "runs", run.record.id, "logs", "u.0.log"), "utf8")).toBe("4242\n4343\n");
    const bad = await troupe(["run", plain, "--task-user", "0"], { home: troupeHome });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--task-user 0: tasks never run as root/);
  });

  it("in a container too: the engine's --privileged where allowed (every capability), its default set otherwise", async () => {
    const caps = (privileged: boolean) =>
      home.spec(
        "caps",
        `workflow:\n  name: caps\n  tasks:\n  - name: c\n    image: alpine:3.18\n    privileged: ${privileged}\n    command: ["sh", "-c", "grep CapEff /proc/self/status"]\n`,
      );
    const effective = async (privileged: boolean) => {
      const run = await runJson(caps(privileged), {
        home: troupeHome,
        target: "container",
        extra: privileged ? ["--allow-privileged"] : [],
      });
      expect(run.code, describeRun(run)).toBe(0);
      const line = fs.readFileSync(path.join(troupeHome, "runs", run.record.id, "logs", "c.0.log"), "utf8");
      return BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(line)![1]}`);
    };
    const withAll = await effective(true);
    const usual = await effective(false);
    const sysAdmin = 1n << 21n;
    expect(withAll & sysAdmin).toBe(sysAdmin);
    expect(usual & sysAdmin).toBe(0n);
  });
});
