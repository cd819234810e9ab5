/**
 * A failure troupe goes on without leaves a line in its log: here the engine
 * check's kept answer, made unreadable, is checked again (the run goes on in
 * containers) and the log of the run (`--log-file`, taken before the check
 * runs) says why, naming the file. Real podman, as scripts/test.sh sets it up.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLES, ROOT, TestHome, ensureBuilt, removeRunLeftovers, troupe } from "./helpers.js";

const PODMAN = { CONTAINERS_CONF: path.join(ROOT, "scripts", "ci-containers.conf"), TROUPE_RUNTIME: undefined };
let home: TestHome;
const runIds: string[] = [];

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterAll(() => {
  removeRunLeftovers(runIds);
  home?.remove();
});

async function runInContainers(extra: string[] = []): Promise<string> {
  const result = await troupe(["run", path.join(EXAMPLES, "parallel_tasks.yaml"), "--runtime", "container", "--output", "json", ...extra], {
    home: home.home,
    env: PODMAN,
    timeoutMs: 60_000,
  });
  expect(result.code, result.stderr).toBe(0);
  const id = (JSON.parse(result.stdout) as { id: string }).id;
  runIds.push(id);
  return id;
}

describe("a tolerated failure in the log", () => {
  it("an unreadable engine check record is checked again, and the log says so", async () => {
    await runInContainers();
    const checks = path.join(home.home, "engine-checks");
    const records = fs.readdirSync(checks).filter((name) => name.endsWith(".json"));
    expect(records).toHaveLength(1);
    const record = path.join(checks, records[0]!);
    fs.writeFileSync(record, "{torn");

    const logFile = path.join(home.home, "run.log");
    const id = await runInContainers(["--log-file", logFile]);
    const lines = fs
      .readFileSync(logFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.find((line) => /engine check's record is unreadable/.test(String(line.msg)))).toMatchObject({
      level: "debug",
      file: record,
      err: expect.objectContaining({ type: "SyntaxError" }),
    });
    expect(lines.find((line) => line.msg === "run ended")).toMatchObject({ run: id, status: "COMPLETED" });
    // Asked again, and kept again.
    expect(JSON.parse(fs.readFileSync(record, "utf8"))).toMatchObject({ started: true });
  });
});
