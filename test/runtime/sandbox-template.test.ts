/**
 * troupe-spawner's sandboxes started from a template mount namespace
 * (native/sandbox-template.c), against the real built helper, as root: what
 * tasks share (the template's /dev, troupe's home hidden) and what they do not
 * (/dev/pts, /dev/shm, /tmp), their binds inside the hidden home (mount points
 * made and removed by the helper, kept while another sandbox uses the same
 * one), and the sandboxes that are built whole instead.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureSpawnerBuilt, isRoot, run, spawnerFixtures } from "./spawner-fixtures.js";

const { tempDir, newSpawner, closeSpawners, removeDirs } = spawnerFixtures("troupe-template");
beforeAll(ensureSpawnerBuilt);
afterEach(() => {
  closeSpawners();
  removeDirs();
});

/** A home like troupe's (hidden from tasks), a secret in it, a task's output and an input inside it. */
function home() {
  const dir = tempDir();
  writeFileSync(join(dir, "secret"), "not for tasks\n");
  mkdirSync(join(dir, "runs", "r-1", "outputs", "producer", "0"), { recursive: true });
  writeFileSync(join(dir, "runs", "r-1", "outputs", "producer", "0", "data"), "produced\n");
  return { dir, input: join(dir, "runs", "r-1", "outputs", "producer", "0") };
}

/** The directives the host runtime gives a flat task as root (sandboxSpec, spawnerDirectives), running `script`. */
function task(name: string, dir: string, input: string, script: string, options: { privileged?: boolean; extra?: string[] } = {}) {
  const output = join(dir, "runs", "r-1", "outputs", name, "0");
  const directives = ["hostname", name, "chdir", "/", "read-only-root"];
  if (!options.privileged) directives.push("user", "65534", "65534");
  directives.push("mkdir", output, "proc", "/proc", "dev", "/dev", "tmpfs", "/tmp", ...(options.extra ?? []), "hide", dir);
  directives.push("bind", output, output, "ro-bind", input, input, "ro-data", "127.0.0.1\tlocalhost\n", "/etc/hosts", "seal", dir);
  directives.push("env", "PATH=/usr/bin:/bin", "--", "sh", "-c", script);
  return { output, start: { argv: ["sh"], directives, logPath: join(dir, `${name}.log`) } };
}

/** The helper's fds that hold a detached tree (readlink "/"): the writable clones of its templates' hidden directories. */
function templateTrees(helperPid: number): string[] {
  return readdirSync(`/proc/${helperPid}/fd`)
    .map((fd) => `/proc/${helperPid}/fd/${fd}`)
    .filter((path) => {
      try {
        return readlinkSync(path) === "/" && statSync(path).isDirectory();
      } catch {
        return false;
      }
    });
}

const parentOf = (pid: number) => Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

describe.skipIf(!isRoot)("troupe-spawner: sandboxes from a template (root only: namespaces without a user namespace)", () => {
  it("share the template's /dev but not /dev/pts, /dev/shm nor /tmp; see their output and input, not the home around them", async () => {
    const { dir, input } = home();
    const spawner = newSpawner();
    const ids = 'stat -c "%d" /dev /dev/pts /dev/shm /tmp | tr "\\n" " "';
    // a leaves its marks and stays a while; b, given a's output as an input too, looks once they are there.
    const a = task("a", dir, input, `echo a > /dev/shm/mark; echo a > /tmp/mark; ${ids} > OUT/ids; sleep 1.5`);
    a.start.directives = a.start.directives.map((d) => d.replaceAll("OUT", a.output));
    const b = task(
      "b",
      dir,
      input,
      [
        `while [ ! -e ${a.output}/ids ]; do sleep 0.05; done`,
        `${ids} > OUT/ids; ls -A /dev/shm /tmp > OUT/seen; cat ${input}/data >> OUT/seen`,
        `cat ${dir}/secret >> OUT/seen 2>&1; ls ${dir}/runs >> OUT/seen 2>&1; id -u >> OUT/seen`,
      ].join("; "),
    );
    b.start.directives = b.start.directives.map((d) => d.replaceAll("OUT", b.output));
    b.start.directives.splice(b.start.directives.indexOf("ro-data"), 0, "ro-bind", a.output, a.output);
    // b binds a's output: there before either starts (a's sandbox would make it, maybe after b's looked for it).
    mkdirSync(a.output, { recursive: true });
    const ra = run(spawner, a.start, (_t, p) => p.release());
    const rb = run(spawner, b.start, (_t, p) => p.release());
    expect(await ra.exit).toEqual({ code: 0 });
    expect(await rb.exit).toEqual({ code: 0 });
    const [devA, ptsA, shmA, tmpA] = readFileSync(join(a.output, "ids"), "utf8").trim().split(" ");
    const [devB, ptsB, shmB, tmpB] = readFileSync(join(b.output, "ids"), "utf8").trim().split(" ");
    expect(devB).toBe(devA); // one /dev, the template's
    expect([ptsB, shmB, tmpB]).not.toContain(ptsA);
    expect([ptsB, shmB, tmpB]).not.toContain(shmA);
    expect([ptsB, shmB, tmpB]).not.toContain(tmpA);
    const seen = readFileSync(join(b.output, "seen"), "utf8");
    expect(seen).toContain("/dev/shm:\n\n/tmp:\nproduced\n"); // nothing of a's in b's /dev/shm or /tmp; the input there
    expect(seen).toMatch(/secret: No such file or directory/); // the home is hidden
    expect(seen).toMatch(/Permission denied/); // what else is in there is not the task's to list
    expect(seen.trim().endsWith("65534")).toBe(true);
  });

  it("keeps a mount point another sandbox still uses, and removes each once none does", async () => {
    const { dir, input } = home();
    const spawner = newSpawner();
    // Both bind the same input; the first ends while the second still reads it (once the test says go, in the input).
    const first = task("first", dir, input, `cat ${input}/data`);
    const second = task("second", dir, input, `while [ ! -e ${input}/go ]; do sleep 0.05; done; cat ${input}/data; ls ${input}`);
    let sandboxPid = 0;
    const rs = run(spawner, second.start, (text, p) => {
      sandboxPid ||= Number(/"child-pid": (\d+)/.exec(text)?.[1] ?? 0);
      p.release();
    });
    const rf = run(spawner, first.start, (_t, p) => p.release());
    expect(await rf.exit).toEqual({ code: 0 });
    const helperPid = parentOf(sandboxPid);
    const trees = templateTrees(helperPid);
    expect(trees).toHaveLength(1); // one hidden directory: the home
    // While second runs: its own output's mount point and the input's, nothing of first's output.
    const points = (at: string): string[] =>
      readdirSync(at, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [join(at, e.name), ...points(join(at, e.name))] : []));
    const relative = (path: string) => path.slice(trees[0]!.length + 1);
    expect(points(trees[0]!).map(relative).sort()).toEqual(
      [
        "runs",
        "runs/r-1",
        "runs/r-1/outputs",
        "runs/r-1/outputs/producer",
        "runs/r-1/outputs/producer/0",
        "runs/r-1/outputs/second",
        "runs/r-1/outputs/second/0",
      ].sort(),
    );
    writeFileSync(join(input, "go"), "");
    expect(await rs.exit).toEqual({ code: 0 });
    expect(readFileSync(join(dir, "second.log"), "utf8")).toBe("produced\ndata\ngo\n");
    expect(readdirSync(trees[0]!)).toEqual([]);
  });

  it("sees what the host mounted since the template was made, and keeps a home made again hidden", async () => {
    const { dir, input } = home();
    const spawner = newSpawner();
    const look = async (name: string, script: string) => {
      const t = task(name, dir, input, script);
      const r = run(spawner, t.start, (_t, p) => p.release());
      expect(await r.exit).toEqual({ code: 0 });
      return readFileSync(t.start.logPath, "utf8");
    };
    const outside = tempDir();
    chmodSync(outside, 0o755); // the task's user passes through
    const mountPoint = join(outside, "mnt");
    mkdirSync(mountPoint);
    expect(await look("before", `ls -A ${mountPoint}; cat ${dir}/secret 2>&1 | grep -c 'No such'`)).toBe("1\n");
    // A file system mounted on the host now: the template holds the mounts of its making, so it is made again.
    execFileSync("mount", ["-t", "tmpfs", "troupe-template-test", mountPoint]);
    try {
      writeFileSync(join(mountPoint, "new"), "mounted later\n");
      expect(await look("after", `cat ${mountPoint}/new`)).toBe("mounted later\n");
    } finally {
      execFileSync("umount", ["--lazy", mountPoint]);
    }
    // The home removed and made again (a new directory at the same path): hidden all the same.
    const logs = readdirSync(dir).filter((entry) => entry.endsWith(".log"));
    const kept = logs.map((entry) => [entry, readFileSync(join(dir, entry))] as const);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (const [entry, text] of kept) writeFileSync(join(dir, entry), text);
    writeFileSync(join(dir, "secret"), "a new secret\n");
    mkdirSync(input, { recursive: true });
    writeFileSync(join(input, "data"), "produced again\n");
    expect(await look("again", `cat ${dir}/secret 2>&1 | grep -c 'No such'; cat ${input}/data`)).toBe("1\nproduced again\n");
  });

  it("builds whole a sandbox a template would change: privileged, or a tmpfs over the home's parent; and none with TROUPE_SANDBOX_TEMPLATE=0", async () => {
    const { dir, input } = home();
    /** /dev's device number in each of `names`' sandboxes, run at once (a number is reused once its file system is gone). */
    const devsOf = async (spawner: ReturnType<typeof newSpawner>, names: string[], options: Parameters<typeof task>[4] = {}) => {
      const tasks = names.map((name) =>
        task(name, dir, input, `stat -c %d /dev; cat ${dir}/secret 2>&1; cat ${input}/data; sleep 0.3`, options),
      );
      const runs = tasks.map((t) => run(spawner, t.start, (_t, p) => p.release()));
      for (const r of runs) expect(await r.exit).toEqual({ code: 0 });
      return tasks.map((t) => {
        const [dev, ...rest] = readFileSync(t.start.logPath, "utf8").trim().split("\n");
        expect(rest).toEqual([expect.stringMatching(/No such file or directory/), "produced"]);
        return dev;
      });
    };
    const spawner = newSpawner();
    const templated = await devsOf(spawner, ["t1", "t2"]);
    expect(templated[1]).toBe(templated[0]);
    // The home's parent under a tmpfs of the task's own, showing what it held (a files: entry there, sandbox.ts
    // shadowDirectory): the home is hidden all the same.
    const parent = join(dir, "..");
    const shadow = ["tmpfs", parent, "ro-bind", dir, dir];
    const whole = [...(await devsOf(spawner, ["p1"], { privileged: true })), ...(await devsOf(spawner, ["s1"], { extra: shadow }))];
    expect(whole).not.toContain(templated[0]);
    const before = process.env.TROUPE_SANDBOX_TEMPLATE;
    process.env.TROUPE_SANDBOX_TEMPLATE = "0";
    try {
      const off = newSpawner();
      const offDevs = await devsOf(off, ["o1", "o2"]);
      expect(offDevs[1]).not.toBe(offDevs[0]);
    } finally {
      if (before === undefined) delete process.env.TROUPE_SANDBOX_TEMPLATE;
      else process.env.TROUPE_SANDBOX_TEMPLATE = before;
    }
  });
});
