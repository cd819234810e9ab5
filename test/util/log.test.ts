/**
 * util/log.ts and util/log-file.ts on real files: nothing is written before a
 * file is named, children carry their run and task, errors keep their stack
 * and are bounded, secrets are redacted, and the file is rotated at its size
 * by one writer while another (the server's other thread) follows it.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LogFile } from "../../src/util/log-file.js";
import { closeLog, configureLog, log, withoutSecrets } from "../../src/util/log.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-log-"));
afterEach(() => closeLog());
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const lines = (file: string) =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("the log", () => {
  it("writes nothing before a file is named; a child made before then logs with its context after", () => {
    const file = path.join(dir, "nested", "early.log");
    const task = log.child({ run: "r-1" }).child({ task: "train", retry: 2 });
    task.warn({}, "lost before any file");
    expect(fs.existsSync(file)).toBe(false);
    configureLog({ file, level: "debug" });
    task.debug({ what: "x" }, "after");
    log.trace({}, "below the level");
    expect(lines(file)).toEqual([
      expect.objectContaining({ level: "debug", run: "r-1", task: "train", retry: 2, what: "x", msg: "after", pid: process.pid }),
    ]);
    expect(lines(file)[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("keeps an error's message, code and stack, bounded in length", () => {
    const file = path.join(dir, "errors.log");
    configureLog({ file, level: "info" });
    const error = Object.assign(new Error("podman failed"), { code: "E_X", stderr: "y".repeat(10_000) });
    log.error({ err: error, run: "r-2" }, "could not remove the network");
    const [line] = lines(file);
    const err = line!.err as Record<string, string>;
    expect(err).toMatchObject({ type: "Error", message: "podman failed", code: "E_X" });
    expect(err.stack).toContain("log.test.ts");
    expect(err.stderr!.length).toBeLessThan(4_100);
    expect(err.stderr).toMatch(/\(6000 more characters\)$/);
  });

  it("redacts secrets: authorization and token fields, token-like query parameters", () => {
    const file = path.join(dir, "secrets.log");
    configureLog({ file, level: "info" });
    log.info(
      { headers: { authorization: "Bearer s3cret-a" }, token: "s3cret-b", req: { method: "GET", url: "/x?token=s3cret-c&n=1" } },
      "r",
    );
    const text = fs.readFileSync(file, "utf8");
    expect(text).not.toMatch(/s3cret/);
    expect(lines(file)[0]).toMatchObject({
      headers: { authorization: "[redacted]" },
      token: "[redacted]",
      req: { url: "/x?token=[redacted]&n=1" },
    });
    expect(withoutSecrets("/a?access_token=1&api%5Fkey=2&limit=3&sig")).toBe("/a?access_token=[redacted]&api%5Fkey=[redacted]&limit=3&sig");
    expect(withoutSecrets("/a/b")).toBe("/a/b");
  });
});

describe("the log file", () => {
  it("is rotated at its size to PATH.1 by one writer; another writer follows it to the new file", async () => {
    const file = path.join(dir, "server.log");
    const rotating = new LogFile(file, { maxBytes: 4096 });
    const following = new LogFile(file);
    const line = (who: string, i: number) => JSON.stringify({ who, i, pad: "p".repeat(100) }) + "\n";
    for (let i = 0; i < 25; i++) rotating.write(line("main", i));
    for (let i = 0; i < 10; i++) following.write(line("http", i));
    expect(fs.existsSync(`${file}.1`)).toBe(false);
    // The rotating writer counts its own lines (and the file's whole size, once a second): a few more, and it rotates.
    let written = 25;
    while (!fs.existsSync(`${file}.1`) && written < 100) rotating.write(line("main", written++));
    expect(written).toBeLessThan(40);
    expect(fs.statSync(`${file}.1`).size).toBeGreaterThanOrEqual(4096);
    const old = fs.readFileSync(`${file}.1`, "utf8").split("\n").filter(Boolean);
    expect(old.map((l) => JSON.parse(l) as { who: string }).filter((l) => l.who === "http")).toHaveLength(10);
    expect(old).toHaveLength(written + 10);
    expect(fs.existsSync(file) && fs.statSync(file).size).toBe(0);
    // A second later, the follower sees the path names a new file and writes there.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    following.write(line("http", 10));
    rotating.write(line("main", 100));
    expect(lines(file).map((l) => `${String(l.who)}${String(l.i)}`)).toEqual(["http10", "main100"]);
    rotating.close();
    following.close();
  });

  it("stops writing, saying so once, when the file cannot be written", () => {
    const file = path.join(dir, "gone", "x.log");
    const failures: string[] = [];
    const logFile = new LogFile(file, { onFailure: (error) => failures.push(error.message) });
    logFile.close();
    logFile.write("a\n");
    logFile.write("b\n");
    expect(failures).toHaveLength(1);
  });
});
