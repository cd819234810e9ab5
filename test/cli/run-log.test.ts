/**
 * `troupe run`'s own log: by default none (the live view is the user's output,
 * and no log file appears anywhere); `--log-file PATH` or TROUPE_LOG_FILE
 * names one, debug by default (TROUPE_LOG_LEVEL). Bad log settings are bad
 * usage, for `run` and for the server.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLES, TestHome, ensureBuilt, troupe } from "../run/helpers.js";

let home: TestHome;
const workflow = path.join(EXAMPLES, "parallel_tasks.yaml");

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterAll(() => home?.remove());

const parsed = (file: string) =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("troupe run's log", () => {
  it("is nowhere by default: no log lines on the terminal, no log file", async () => {
    const result = await troupe(["run", workflow, "--isolation", "none"], { home: home.home });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout + result.stderr).not.toMatch(/"level"|"msg"/);
    expect(fs.readdirSync(home.home).filter((name) => name.endsWith(".log"))).toEqual([]);
  });

  it("goes to --log-file, as JSON lines with the run's id", async () => {
    const file = path.join(home.home, "logs", "run.log");
    const result = await troupe(["run", workflow, "--isolation", "none", "--log-file", file, "--output", "json"], { home: home.home });
    expect(result.code, result.stderr).toBe(0);
    const id = (JSON.parse(result.stdout) as { id: string }).id;
    expect(result.stderr).not.toMatch(/"level"/);
    const lines = parsed(file);
    expect(lines.find((l) => l.msg === "run started")).toMatchObject({ level: "info", run: id, workflow: "parallel-tasks" });
    expect(lines.find((l) => l.msg === "run ended")).toMatchObject({ run: id, status: "COMPLETED" });
  });

  it("goes to TROUPE_LOG_FILE, at TROUPE_LOG_LEVEL", async () => {
    const file = path.join(home.home, "env.log");
    const quiet = await troupe(["run", workflow, "--isolation", "none"], {
      home: home.home,
      env: { TROUPE_LOG_FILE: file, TROUPE_LOG_LEVEL: "warn" },
    });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(fs.readFileSync(file, "utf8")).toBe("");
    const result = await troupe(["run", workflow, "--isolation", "none"], { home: home.home, env: { TROUPE_LOG_FILE: file } });
    expect(result.code, result.stderr).toBe(0);
    expect(parsed(file).map((l) => l.msg)).toEqual(["run started", "run ended"]);
  });

  it("refuses a log level or a log file that cannot be, as bad usage", async () => {
    const level = await troupe(["run", workflow], {
      home: home.home,
      env: { TROUPE_LOG_FILE: path.join(home.home, "x.log"), TROUPE_LOG_LEVEL: "loud" },
    });
    expect(level.code).toBe(2);
    expect(level.stderr).toMatch(/TROUPE_LOG_LEVEL=loud is no log level; use one of trace, debug, info, warn, error, fatal, silent/);
    const unwritable = await troupe(["run", workflow, "--log-file", path.join(workflow, "x.log")], { home: home.home });
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toMatch(
      /--log-file: cannot write the log file .*parallel_tasks\.yaml\/x\.log \(EEXIST: file already exists, mkdir '.*parallel_tasks\.yaml'\)/,
    );
    const size = await troupe(["server", "--home", home.outsideTmp(), "--log-max-size", "1Ki"], { home: home.home });
    expect(size.code).toBe(2);
    expect(size.stderr).toMatch(/--log-max-size expects a size of at least 4Ki/);
    const serverLevel = await troupe(["server", "--home", home.outsideTmp(), "--log-level", "loud"], { home: home.home });
    expect(serverLevel.code).toBe(2);
    expect(serverLevel.stderr).toMatch(/--log-level.*loud.*Allowed choices are trace, debug/);
  });
});
