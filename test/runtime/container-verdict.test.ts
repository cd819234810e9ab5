/**
 * troupe-init's verdict as troupe reads it (src/runtime/container/verdict.ts):
 * only with the attempt's nonce, and never by following what the task may
 * have put at its name (a link to a FIFO or to /dev/zero of the host would
 * have troupe read for ever). The containers themselves are in
 * test/run/container-hardening.test.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readVerdict, releasedExit, releasedNonce, releaseWithNonce } from "../../src/runtime/container/verdict.js";
import { ensureBuilt } from "../run/helpers.js";

beforeAll(ensureBuilt, 200_000); // the child process below reads dist/

const root = mkdtempSync(join(tmpdir(), "troupe-verdict-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const controlDir = () => {
  const dir = join(root, `ctl${count++}`);
  execFileSync("mkdir", [dir]);
  return dir;
};

describe("the verdict of troupe-init", () => {
  it("is taken with the nonce of the release, and only with it", () => {
    const dir = controlDir();
    const { nonce, restartKey } = releaseWithNonce(dir);
    expect(nonce).toMatch(/^[0-9a-f]{48}$/);
    expect(restartKey).toMatch(/^[0-9a-f]{48}$/);
    expect(restartKey).not.toBe(nonce);
    expect(readFileSync(join(dir, "go"), "utf8")).toBe(`${nonce} ${restartKey}\n`);
    expect(releasedNonce(dir)).toBe(nonce); // kept beside the directory, for a later process
    expect(readVerdict(dir, nonce)).toBeUndefined();
    writeFileSync(join(dir, "verdict"), `verdict ${nonce} 137 1\n`);
    expect(readVerdict(dir, nonce)).toEqual({ code: 137, oom: true });
    expect(releasedExit(0, readVerdict(dir, nonce))).toEqual({ code: 137, reason: "killed: more memory than its limit" });
    for (const forged of ["verdict x 137 1\n", `verdict ${nonce}0 137 1\n`, "oom\n", `verdict  137 1\n`]) {
      writeFileSync(join(dir, "verdict"), forged);
      expect(readVerdict(dir, nonce)).toBeUndefined();
      expect(releasedExit(3, readVerdict(dir, nonce))).toEqual({ code: 3 });
    }
    expect(readVerdict(dir, undefined)).toBeUndefined();
  });

  it("is not read through a link the task put there (to a FIFO, to /dev/zero): none, at once", { timeout: 20_000 }, () => {
    const dir = controlDir();
    const { nonce } = releaseWithNonce(dir);
    const fifo = join(root, `fifo${count}`);
    execFileSync("mkfifo", [fifo]);
    const module = new URL("../../dist/runtime/container/verdict.js", import.meta.url).href;
    for (const target of [fifo, "/dev/zero"]) {
      rmSync(join(dir, "verdict"), { force: true });
      symlinkSync(target, join(dir, "verdict"));
      // In a child process: a read that blocks would block this one.
      const out = execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { readVerdict } from ${JSON.stringify(module)}; console.log(String(readVerdict(process.argv[1], process.argv[2])))`,
          dir,
          nonce,
        ],
        { encoding: "utf8", timeout: 5_000 },
      );
      expect(out.trim()).toBe("undefined");
    }
  });
});
