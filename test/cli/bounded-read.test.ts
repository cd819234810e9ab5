/**
 * A workflow file is read up to its size limit, not to its end (issue 11):
 * `troupe validate /dev/zero` and `cat /dev/zero | troupe validate -` read
 * 4.4 GB before; now they stop past 10 MiB with E_FILE_TOO_LARGE.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin", "troupe");

let justOverFile: string | undefined;
/** A file of 10 MiB + 1 bytes (zeros), made once. */
function justOver(): string {
  if (justOverFile === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-bounded-"));
    justOverFile = path.join(dir, "just-over.yaml");
    fs.writeFileSync(justOverFile, Buffer.alloc(10 * 1024 * 1024 + 1));
  }
  return justOverFile;
}
afterAll(() => justOverFile && fs.rmSync(path.dirname(justOverFile), { recursive: true, force: true }));

function sh(command: string) {
  const started = Date.now();
  const result = spawnSync("sh", ["-c", command], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", BIN, NODE: process.execPath, JUST_OVER: justOver() },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, seconds: (Date.now() - started) / 1000 };
}

const TOO_LARGE =
  /:1:1: error E_FILE_TOO_LARGE: the file has more than 10,485,760 bytes \(reading stopped there\); the limit is 10,485,760 \(10 MiB\)/;

describe("reading a workflow file stops at the size limit", () => {
  it.each([
    ["a file that never ends", '"$NODE" "$BIN" validate /dev/zero'],
    ["standard input that never ends", 'cat /dev/zero | "$NODE" "$BIN" validate -'],
    ["standard input redirected from /dev/zero", '"$NODE" "$BIN" validate - < /dev/zero'],
    ["the same through plan", '"$NODE" "$BIN" plan /dev/zero'],
  ])("%s: E_FILE_TOO_LARGE, exit 1, at once", (_name, command) => {
    // The baseline, measured alongside: the same command on a file just over the limit, whose reading stops
    // at the same place. Reading on (4.4 GB before) takes many times as long; the ratio is wide for a busy machine.
    const baseline = sh('"$NODE" "$BIN" validate "$JUST_OVER"');
    expect(baseline.stdout + baseline.stderr).toMatch(TOO_LARGE);
    const result = sh(command);
    expect(result.stdout + result.stderr).toMatch(TOO_LARGE);
    expect(result.status).toBe(1);
    expect(result.seconds, `baseline ${baseline.seconds} s`).toBeLessThan(5 * baseline.seconds);
  });

  it("a file just over the limit says the same; one at the limit is read whole", () => {
    const over = sh('head -c 10485761 /dev/zero | tr "\\0" "#" | "$NODE" "$BIN" validate -');
    expect(over.stdout).toMatch(TOO_LARGE);
    const at = sh('head -c 10485760 /dev/zero | tr "\\0" "#" | "$NODE" "$BIN" validate -');
    expect(at.stdout).toMatch(/E_EMPTY_FILE/);
  });

  it("the client stops too, before sending anything", () => {
    const result = sh('TROUPE_SERVER=http://127.0.0.1:9 TROUPE_TOKEN=x "$NODE" "$BIN" workflow submit /dev/zero');
    expect(result.stderr).toMatch(/E_FILE_TOO_LARGE: \/dev\/zero: more than 10,485,760 bytes/);
    expect(result.status).toBe(1);
  });
});
