/**
 * troupe-init's Kubernetes mode (native/k8s-holder.c), the barrier's holder for images without a shell, as a
 * real process over directories standing in for the pod's volumes (the downward API file of its annotations,
 * the launch Secret): held while the launch or the release is missing, then the files in place with their
 * modes and the command exec'd with exactly the launch's environment and argv, its exit code the holder's.
 * In a real container without /bin/sh: init-holder-scratch.test.ts; on the API server: init-configmap.test.ts.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtHelper } from "../../src/runtime/native-helpers.js";
import { ensureBuilt } from "../run/helpers.js";
import { taskLaunch, writeAnnotations, writeLaunch, writeRaw } from "./init-holder-fixtures.js";

const root = mkdtempSync(join(tmpdir(), "troupe-init-holder-"));
beforeAll(ensureBuilt, 200_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A pod's two directories (the launch's not there yet, as before its Secret exists) and troupe-init started over them. */
function startHolder() {
  const dir = join(root, `pod-${count++}`);
  const podInfo = join(dir, "pod");
  const launchDir = join(dir, "launch");
  mkdirSync(podInfo, { recursive: true });
  writeAnnotations(podInfo, "held");
  const child = spawn(builtHelper("troupe-init")!, ["--kubernetes", podInfo, launchDir], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))));
  let done = false;
  void exited.then(() => (done = true));
  return { dir, podInfo, launchDir, child, exited, stderr: () => stderr, done: () => done };
}

/** troupe-init's launch format: NUL-terminated fields. */
const records = (...fields: string[]) => fields.map((field) => `${field}\0`).join("");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A command that writes its argv and environment as JSON to `out`, then ends with `code`. */
function printer(out: string, code: number): string[] {
  const script = `require("fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify({ argv0: process.argv0, argv: process.argv.slice(1), env: process.env })); process.exit(${code})`;
  return ["-e", script, "--", "two words", 'it\'s "quoted" $HOME', ""];
}

describe("troupe-init --kubernetes", () => {
  it("holds until both the launch and the release are there, then places the files and execs argv with exactly the launch's environment", async () => {
    const pod = startHolder();
    const out = join(pod.dir, "out.json");
    // The command is found along the launch's PATH, not the holder's: a directory only the launch names.
    const bin = join(pod.dir, "bin");
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, "print-it"));
    const env = { PATH: bin, GREETING: "hello\nworld = 'x'", EMPTY: "" };
    const files = [
      { path: join(pod.dir, "placed/deep/conf.txt"), contents: Buffer.from("configured"), mode: 0o600 },
      { path: join(pod.dir, "placed/run.sh"), contents: Buffer.from([0, 1, 2, 255]), mode: 0o755 },
      { path: join(pod.dir, "placed/default"), contents: Buffer.from("") },
    ];
    const launch = taskLaunch(["print-it", ...printer(out, 7)], env, files);

    await sleep(1500);
    expect(pod.done()).toBe(false); // no launch, held
    mkdirSync(pod.launchDir);
    writeLaunch(pod.launchDir, launch);
    await sleep(1500);
    expect(pod.done()).toBe(false); // the launch, still held
    expect(existsSync(files[0]!.path)).toBe(false);
    writeAnnotations(pod.podInfo, "released");

    expect(await pod.exited).toBe(7);
    const seen = JSON.parse(readFileSync(out, "utf8")) as { argv0: string; argv: string[]; env: Record<string, string> };
    expect(seen.argv0).toBe("print-it");
    expect(seen.argv).toEqual(["two words", 'it\'s "quoted" $HOME', ""]);
    expect(seen.env).toEqual(env);
    for (const file of files) {
      expect(readFileSync(file.path)).toEqual(file.contents);
      expect(statSync(file.path).mode & 0o7777).toBe(file.mode ?? 0o644);
    }
  }, 30_000);

  it("passes the command's exit code through, and says so when the command cannot be found", async () => {
    for (const [argv, code] of [
      [[process.execPath, "-e", "process.exit(0)"], 0],
      [[process.execPath, "-e", "process.exit(255)"], 255],
      [[process.execPath, "-e", "process.kill(process.pid, 'SIGKILL')"], -1],
      [["no-such-command"], 127],
    ] as const) {
      const pod = startHolder();
      mkdirSync(pod.launchDir);
      writeLaunch(pod.launchDir, taskLaunch([...argv], { PATH: "/nonexistent" }, []));
      writeAnnotations(pod.podInfo, "released");
      // A command killed by a signal is the holder killed by it (it exec'd the command).
      expect(await pod.exited).toBe(code);
      if (code === 127) expect(pod.stderr()).toContain("troupe: cannot run no-such-command: No such file or directory");
    }
  }, 30_000);

  it("gives a command of many words, empty ones among them, every word", async () => {
    const pod = startHolder();
    const out = join(pod.dir, "out.json");
    const words = Array.from({ length: 2000 }, (_, i) => (i % 2 ? "" : `w${i}`));
    mkdirSync(pod.launchDir);
    writeLaunch(pod.launchDir, taskLaunch([process.execPath, ...printer(out, 0).slice(0, 3), ...words], {}, []));
    writeAnnotations(pod.podInfo, "released");
    expect(await pod.exited).toBe(0);
    expect((JSON.parse(readFileSync(out, "utf8")) as { argv: string[] }).argv).toEqual(words);
  }, 10_000);

  it("ends at once on SIGTERM while held (a pod deleted at the barrier), running nothing", async () => {
    const pod = startHolder();
    await sleep(300);
    pod.child.kill("SIGTERM");
    expect(await pod.exited).toBe(143);
  }, 10_000);

  const HEADER = "troupe-launch 1";
  const GOOD_FILE = ["file", "file-0"];
  it.each([
    ["a launch of another format", "#!/bin/sh\nexec true\n", 'does not start with "troupe-launch 1" (at byte 0)'],
    ["a launch cut short", records(HEADER, "arg", "/bin/true"), 'it ends before its "end" record (cut short?)'],
    ["a last field without its NUL", `${records(HEADER, "arg", "/bin/true")}end`, "its last field has no terminating NUL"],
    [
      "an unknown record",
      records(HEADER, "cwd", "/tmp", "arg", "/bin/true", "end"),
      "a record that is none of file, env, arg, end (at byte 16)",
    ],
    ["no command", records(HEADER, "env", "A=1", "end"), 'it names no command (no "arg" record)'],
    [
      "an env record that is no NAME=VALUE",
      records(HEADER, "env", "A", "arg", "/bin/true", "end"),
      'an "env" record that is not NAME=VALUE',
    ],
    [
      "a relative file path",
      records(HEADER, ...GOOD_FILE, "rel/x", "644", "arg", "/bin/true", "end"),
      "whose path is not an absolute file path",
    ],
    [
      "a key outside the launch",
      records(HEADER, "file", "../x", "/tmp/x", "644", "arg", "/bin/true", "end"),
      "whose key is not a file name of the launch",
    ],
    [
      "a mode that is not octal",
      records(HEADER, ...GOOD_FILE, "/tmp/x", "rw", "arg", "/bin/true", "end"),
      "whose mode is not an octal mode",
    ],
    ["something after its end", records(HEADER, "arg", "/bin/true", "end", "arg", "x"), 'something follows its "end" record'],
  ])("refuses %s, saying what is wrong and where, and runs nothing", async (_what, text, message) => {
    const pod = startHolder();
    mkdirSync(pod.launchDir);
    const placed = join(pod.dir, "placed-before-the-error");
    // A good file record first: nothing is placed when a later record is bad.
    writeRaw(pod.launchDir, "file-0", "x");
    const prefix = records(HEADER);
    const withFile = text.startsWith(prefix) ? text.replace(prefix, records(HEADER, ...GOOD_FILE, placed, "644")) : text;
    writeRaw(pod.launchDir, "launch", withFile);
    writeAnnotations(pod.podInfo, "released");
    expect(await pod.exited).toBe(127);
    expect(pod.stderr()).toContain(`troupe-init: the launch ${pod.launchDir}/launch is malformed: `);
    // The byte offset counts the file record put in front.
    const shifted = message.replace(/\(at byte (\d+)\)/, (_all, at: string) => `(at byte ${Number(at) + (withFile.length - text.length)})`);
    expect(pod.stderr()).toContain(shifted);
    expect(pod.stderr()).toContain("not running the command");
    expect(existsSync(placed)).toBe(false);
  });

  it("says so when a file of the launch is missing, or the launch cannot be read, instead of waiting for ever", async () => {
    const missing = startHolder();
    mkdirSync(missing.launchDir);
    writeRaw(
      missing.launchDir,
      "launch",
      records("troupe-launch 1", "file", "file-0", join(missing.dir, "x"), "644", "arg", "/bin/true", "end"),
    );
    writeAnnotations(missing.podInfo, "released");
    expect(await missing.exited).toBe(127);
    expect(missing.stderr()).toContain(`the launch's file ${missing.launchDir}/file-0 is missing`);

    const unreadable = startHolder();
    mkdirSync(unreadable.launchDir);
    // A directory where the file should be: there, but not a launch it can read (as one of another user's).
    mkdirSync(join(unreadable.launchDir, "launch"));
    writeAnnotations(unreadable.podInfo, "released");
    expect(await unreadable.exited).toBe(127);
    expect(unreadable.stderr()).toContain(`troupe-init: cannot read the launch ${unreadable.launchDir}/launch`);
  }, 10_000);

  it("refuses to start without its two directories", async () => {
    const child = spawn(builtHelper("troupe-init")!, ["--kubernetes", root], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(127);
    expect(stderr).toContain("usage: troupe-init --kubernetes POD_INFO_DIR LAUNCH_DIR");
  });
});
