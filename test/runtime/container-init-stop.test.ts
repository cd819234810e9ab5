/**
 * troupe-init waiting for its group's release, stopped by the engine: it ends
 * at once. As PID 1 of its container it would ignore the SIGTERM of
 * `podman stop` and `podman rm --force`, which would then wait their whole
 * timeout (10 s, the container "stopping" all along) before their SIGKILL: a
 * resumed server run removes every attempt an earlier server left at its
 * barrier this way, one after the other.
 *
 * With an owner (--owner-fd, as a Slurm step's helper runs it): the whole
 * container ends once the owner's end of the socket is gone, waiting or
 * running, although its `podman run` is still there (conmon would keep it).
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IS_ROOT, ROOT, ensureBuilt, processesWith, random, waitFor } from "../run/helpers.js";

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

/**
 * `podman run` of alpine:3.18 with troupe-init as its entrypoint (`initArgs` after it) and its control directory,
 * the command given; once troupe-init has said it is ready. Its `exited` is podman run's exit code.
 */
async function startAtBarrier(kind: string, initArgs: string[], engineArgs: string[], command: string[], withOwner: boolean) {
  const name = `troupe-init-${kind}-${random()}`;
  names.push(name);
  const ctl = join(dir, name);
  mkdirSync(ctl);
  const init = join(ROOT, "native", "build", "troupe-init");
  const args = ["run", "--rm", "--name", name, "--sig-proxy=false", "--log-driver", "passthrough", ...engineArgs];
  args.push("--volume", `${init}:/.troupe/init:ro`, "--volume", `${ctl}:/.troupe/ctl`);
  args.push("--entrypoint", JSON.stringify(["/.troupe/init", ...initArgs]));
  const stdio = withOwner ? (["ignore", "ignore", "ignore", "pipe"] as const) : "ignore";
  const container = spawn("podman", [...args, "--", "alpine:3.18", ...command], { stdio: stdio as never, env });
  const exited = new Promise<number | null>((resolve) => container.once("exit", resolve));
  // Up and waiting: troupe-init said it was ready, and nothing releases it yet.
  await waitFor(
    () => readdirSync(ctl).includes("ready"),
    (seen) => seen,
    60_000,
    50,
  );
  return { name, ctl, container, exited };
}

describe.runIf(IS_ROOT && podmanWorks())("troupe-init at its barrier", () => {
  it.each([
    ["stop", "--time", "10"],
    ["rm", "--force"],
  ])(
    "ends at once on `podman %s` (no command started)",
    async (...verb) => {
      const { name, exited } = await startAtBarrier("stop", [], [], ["sleep", "600"], false);
      const started = Date.now();
      await run("podman", [...verb, "--", name], { env, timeout: 30_000 });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await exited).toBe(143); // 128 + SIGTERM: its own end, not the SIGKILL after the timeout
    },
    90_000,
  );

  it.each([["waiting at its barrier"], ["running its command"]])(
    "ends the whole container, with 137, once its owner is gone: %s",
    async (when) => {
      const marker = `0.1${Math.floor(Math.random() * 1e6)}`;
      // The command's children too: every process of the container goes, not only the command.
      const script = `ls /proc/self/fd > /.troupe/ctl/fds; (while :; do sleep ${marker}; done) & wait`;
      const owned = await startAtBarrier("owner", ["--owner-fd=3", "--"], ["--preserve-fds", "1"], ["sh", "-c", script], true);
      const { ctl, container, exited } = owned;
      if (when === "running its command") {
        writeFileSync(join(ctl, "go"), "nonce\n");
        // The command has begun (its first line done), and its loop's sleep runs (not podman's line, which names it).
        await waitFor(
          () => existsSync(join(ctl, "fds")) && processesWith(marker).some((p) => p.cmdline.startsWith("sleep")),
          (seen) => seen,
          30_000,
          50,
        );
        // The command never got the owner's socket (close-on-exec): only 0, 1, 2 and ls's own directory fd.
        expect(readFileSync(join(ctl, "fds"), "utf8").split("\n").filter(Boolean).map(Number).sort()).toEqual([0, 1, 2, 3]);
      }
      const started = Date.now();
      (container.stdio[3] as Socket).destroy();
      expect(await exited).toBe(137);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(processesWith(marker).filter((p) => !p.cmdline.startsWith("podman"))).toEqual([]);
      expect(existsSync(join(ctl, "verdict"))).toBe(false);
    },
    90_000,
  );
});
