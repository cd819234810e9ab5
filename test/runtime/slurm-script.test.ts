/**
 * A group's job script (batch-script.ts) run for real by /bin/sh, the shell Slurm is given for it, with a
 * stand-in `srun` first on PATH: this machine's sh (dash on Debian) must take every construct the script uses
 * (no bash-only syntax), the wait for the members' helpers must read the members file (key TAB dir) and end as
 * soon as each has left, and a member Slurm signalled must keep the job waiting for Slurm's end. The real
 * cluster's suites (test/slurm/) run the same scripts under salloc and sbatch.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { allocation, batchScript, shapeOf, type JobRequest } from "../../src/runtime/slurm/batch-script.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "troupe-slurm-script-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Two members, each with a directory, listed as the runtime lists them (slurm-pool.ts `submit`). */
function members(): { membersFile: string; dirs: string[] } {
  const dirs = ["a", "b"].map((key) => join(dir, "members", key));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const membersFile = join(dir, "g.members");
  writeFileSync(membersFile, dirs.map((d, i) => `${["a", "b"][i]}\t${d}\n`).join(""));
  return { membersFile, dirs };
}

/** An `srun` that records its arguments, does what `body` says to the members' directories, and exits with `code`. */
function standInSrun(body: string, code: number): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "srun"), `#!/bin/sh\necho "$@" > ${join(dir, "srun-args")}\n${body}\nexit ${code}\n`, { mode: 0o755 });
  return bin;
}

function request(membersFile: string): JobRequest {
  const shape = shapeOf({ cpu: 1, gpu: 0, memoryBytes: 0 });
  return {
    name: "troupe-run1-g",
    comment: "troupe;run=run1",
    spread: "nodes",
    shapes: [shape, shape],
    runDir: dir,
    scriptOutput: join(dir, "g.%j.out"),
    helper: ["/bin/true"],
    membersFile,
  };
}

function runScript(text: string, bin: string) {
  const script = join(dir, "g.sh");
  writeFileSync(script, text, { mode: 0o700 });
  const started = Date.now();
  const result = spawnSync("/bin/sh", [script], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { ...result, ms: Date.now() - started };
}

describe("a group's job script under /bin/sh", () => {
  it("starts the step, and ends with its status once every member's helper has left", () => {
    const { membersFile, dirs } = members();
    const bin = standInSrun(dirs.map((d) => `touch ${d}/left`).join("\n"), 3);
    const { argv, script } = allocation(request(membersFile), join(dir, "g.sh"));
    expect(argv.at(-2)).toBe("/bin/sh");
    expect(script.startsWith("#!/bin/sh\n")).toBe(true);
    const result = runScript(script, bin);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(3);
    // Both had left at once: no round of the wait (0.1 s each) was needed.
    expect(result.ms).toBeLessThan(5_000);
  });

  it("waits for a helper that leaves late (each member's line read with its tab), then ends", () => {
    const { membersFile, dirs } = members();
    // The second helper leaves half a second after the step has ended.
    const bin = standInSrun(`touch ${dirs[0]}/left\n(sleep 0.5; touch ${dirs[1]}/left) &`, 0);
    const result = runScript(allocation(request(membersFile), join(dir, "g.sh")).script, bin);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.ms).toBeGreaterThanOrEqual(500);
    expect(result.ms).toBeLessThan(5_000);
  });

  it("gives up on helpers that never leave after its five seconds, with the step's status", () => {
    const { membersFile, dirs } = members();
    const bin = standInSrun(`touch ${dirs[0]}/left`, 0);
    const result = runScript(batchScript(request(membersFile)), bin);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.ms).toBeGreaterThanOrEqual(5_000);
  }, 20_000);

  it("a member Slurm signalled keeps the allocation's script waiting for Slurm's end (its SIGTERM ends the wait)", async () => {
    const { membersFile, dirs } = members();
    const bin = standInSrun(`touch ${dirs[0]}/left ${dirs[1]}/signalled`, 143);
    const script = join(dir, "g.sh");
    writeFileSync(script, allocation(request(membersFile), script).script, { mode: 0o700 });
    const child = spawn("/bin/sh", [script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, stdio: "ignore" });
    const ended = new Promise<number | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal === null ? _code : -1)));
    const early = await Promise.race([ended, new Promise((resolve) => setTimeout(() => resolve("waiting"), 1_500))]);
    expect(early).toBe("waiting");
    // salloc's --kill-command=TERM: the script has become the `sleep` it waits in.
    child.kill("SIGTERM");
    expect(await ended).toBe(-1);
  });
});
