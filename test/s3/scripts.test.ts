/**
 * scripts/s3/up.sh and down.sh as CI and developers use them: a second up.sh keeps the running server, a state
 * directory is not moved to another port, a taken port is refused, down.sh removes only what up.sh made.
 * A private server (its own state directory and ports), so that CI's shared one is left alone.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { DOWN_SCRIPT, parseExports, UP_SCRIPT } from "./s3-server.js";

const execFileAsync = promisify(execFile);
const DIR = `/var/tmp/troupe-s3-scripts-${process.pid}`;
const PORT = 18383;

async function script(path: string, settings: Record<string, string>) {
  try {
    const { stdout, stderr } = await execFileAsync("bash", [path], { env: { ...process.env, ...settings }, timeout: 1_800_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}
const mine = { TROUPE_S3_DIR: DIR, TROUPE_S3_PORT: String(PORT) };

describe("scripts/s3/up.sh and down.sh", () => {
  afterAll(async () => {
    await script(DOWN_SCRIPT, mine);
  }, 60_000);

  it("starts once, keeps the running server on a second call, and refuses another port for its state", { timeout: 1_800_000 }, async () => {
    const first = await script(UP_SCRIPT, mine);
    expect(first.code, first.stderr).toBe(0);
    const values = parseExports(first.stdout);
    expect(values.TROUPE_S3_ENDPOINT).toBe(`http://127.0.0.1:${PORT}`);
    expect(values.TROUPE_S3_USER_BUCKET).toBe("troupe-user");
    const pid = readFileSync(`${DIR}/weed.pid`, "utf8");

    const second = await script(UP_SCRIPT, mine);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout); // the same keys
    expect(second.stderr).not.toContain("starting");
    expect(readFileSync(`${DIR}/weed.pid`, "utf8")).toBe(pid);

    const moved = await script(UP_SCRIPT, { ...mine, TROUPE_S3_PORT: String(PORT + 10) });
    expect(moved.code).toBe(2);
    expect(moved.stderr).toContain(`runs on port ${PORT}, not ${PORT + 10}`);
  });

  it("refuses a port another program listens on, and a bad port setting", async () => {
    const other: Server = createServer();
    await new Promise<void>((resolve) => other.listen(PORT + 22, "127.0.0.1", resolve)); // the filer's port of PORT + 20
    try {
      const taken = await script(UP_SCRIPT, { TROUPE_S3_DIR: `${DIR}-taken`, TROUPE_S3_PORT: String(PORT + 20) });
      expect(taken.code).toBe(2);
      expect(taken.stderr).toContain(`port ${PORT + 22} on 127.0.0.1 is taken`);
    } finally {
      other.close();
      await script(DOWN_SCRIPT, { TROUPE_S3_DIR: `${DIR}-taken` });
    }
    const bad = await script(UP_SCRIPT, { TROUPE_S3_DIR: `${DIR}-bad`, TROUPE_S3_PORT: "80a" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("TROUPE_S3_PORT must be a number");
  });

  it("down.sh stops the server and removes its state, and leaves a directory up.sh did not make", async () => {
    const pid = Number(readFileSync(`${DIR}/weed.pid`, "utf8"));
    const down = await script(DOWN_SCRIPT, mine);
    expect(down.code, down.stderr).toBe(0);
    expect(existsSync(DIR)).toBe(false);
    expect(existsSync(`/proc/${pid}/exe`) && readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2] !== "Z").toBe(false);
    const foreign = `${DIR}-foreign`;
    mkdirSync(foreign, { recursive: true });
    try {
      const refused = await script(DOWN_SCRIPT, { TROUPE_S3_DIR: foreign });
      expect(refused.code).toBe(2);
      expect(existsSync(foreign)).toBe(true);
    } finally {
      rmSync(foreign, { recursive: true, force: true });
    }
  });
});
