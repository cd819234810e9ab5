/**
 * troupe-init waiting for its group's release, stopped by the engine: it ends
 * at once. As PID 1 of its container it would ignore the SIGTERM of
 * `podman stop` and `podman rm --force`, which would then wait their whole
 * timeout (10 s, the container "stopping" all along) before their SIGKILL: a
 * resumed server run removes every attempt an earlier server left at its
 * barrier this way, one after the other.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IS_ROOT, ROOT, ensureBuilt, random, waitFor } from "../run/helpers.js";

const CONTAINERS_CONF = process.env.CONTAINERS_CONF ?? join(ROOT, "scripts", "ci-containers.conf");
const env = { ...process.env, CONTAINERS_CONF };
const run = promisify(execFile);

function podmanWorks(): boolean {
  try {
    execFileSync("podman", ["image", "exists", "alpine:3.18"], { stdio: "ignore", timeout: 30_000, env });
    return true;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join("/var/tmp", "troupe-init-stop-"));
const names: string[] = [];

beforeAll(ensureBuilt, 200_000);
afterAll(() => {
  for (const name of names) execFileSync("podman", ["rm", "--force", "--time", "0", "--", name], { stdio: "ignore", env });
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe.runIf(IS_ROOT && podmanWorks())("troupe-init at its barrier", () => {
  it.each([
    ["stop", "--time", "10"],
    ["rm", "--force"],
  ])(
    "ends at once on `podman %s` (no command started)",
    async (...verb) => {
      const name = `troupe-init-stop-${random()}`;
      names.push(name);
      const ctl = join(dir, name);
      mkdirSync(ctl);
      const init = join(ROOT, "native", "build", "troupe-init");
      const args = ["run", "--rm", "--name", name, "--sig-proxy=false", "--log-driver", "passthrough"];
      args.push("--volume", `${init}:/.troupe/init:ro`, "--volume", `${ctl}:/.troupe/ctl`, "--entrypoint", '["/.troupe/init"]');
      const container = spawn("podman", [...args, "--", "alpine:3.18", "sleep", "600"], { stdio: "ignore", env });
      const exited = new Promise<number | null>((resolve) => container.once("exit", resolve));
      // Up and waiting: troupe-init said it was ready, and nothing releases it.
      await waitFor(
        () => readdirSync(ctl).includes("ready"),
        (seen) => seen,
        60_000,
        50,
      );
      const started = Date.now();
      await run("podman", [...verb, "--", name], { env, timeout: 30_000 });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await exited).toBe(143); // 128 + SIGTERM: its own end, not the SIGKILL after the timeout
    },
    90_000,
  );
});
