/**
 * What the tests of troupe-spawner (spawner.test.ts) and its keepers
 * (keeper.test.ts) share: the built helper, temporary directories outside
 * /tmp, spawners closed after each test, and a poll with a deadline.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { SandboxProcess, SandboxStart } from "../../src/runtime/host/sandbox-process.js";
import { Spawner } from "../../src/runtime/host/spawner.js";

export const HELPER = fileURLToPath(new URL("../../native/build/troupe-spawner", import.meta.url));
export const isRoot = process.getuid?.() === 0;

/** For beforeAll: builds the helper when it is not there. */
export function ensureSpawnerBuilt(): void {
  if (!existsSync(HELPER)) execFileSync("node", [fileURLToPath(new URL("../../scripts/build-native.mjs", import.meta.url))]);
  if (!existsSync(HELPER)) throw new Error("troupe-spawner could not be built (no C compiler?)");
}

/** Directories and spawners made by a test file's tests; `closeSpawners` and `removeDirs` go in its afterEach. */
export function spawnerFixtures(prefix: string) {
  const dirs: string[] = [];
  const spawners: Spawner[] = [];
  return {
    /** Not under /tmp: a sandbox's /tmp is private. */
    tempDir(): string {
      const dir = mkdtempSync(`/var/tmp/${prefix}-`);
      dirs.push(dir);
      return dir;
    },
    newSpawner(): Spawner {
      const spawner = new Spawner(HELPER);
      spawners.push(spawner);
      return spawner;
    },
    closeSpawners(): void {
      spawners.splice(0).forEach((s) => s.close());
    },
    removeDirs(): void {
      dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
    },
  };
}

export async function waitFor(condition: () => boolean, what: string, ms: number): Promise<void> {
  for (const deadline = Date.now() + ms; !condition(); await new Promise((r) => setTimeout(r, 20)))
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

export interface Exit {
  code: number | undefined;
  error?: string;
}

/** Starts one process and records everything it reports; `exit` rejects rather than hang. */
export function run(spawner: Spawner, start: Partial<SandboxStart>, onStatus?: (text: string, proc: SandboxProcess) => void) {
  const status: Buffer[] = [];
  const output: Buffer[] = [];
  let ended = false;
  let outputAfterExit = false;
  let proc!: SandboxProcess;
  const exited = new Promise<Exit>((resolve) => {
    proc = spawner.start(
      { argv: [], logPath: "/dev/null", live: false, ...start },
      {
        status: (chunk) => {
          status.push(chunk);
          onStatus?.(Buffer.concat(status).toString(), proc);
        },
        output: (chunk) => {
          outputAfterExit ||= ended;
          output.push(chunk);
        },
        exit: (code, error) => {
          ended = true;
          resolve(error === undefined ? { code } : { code, error });
        },
      },
    );
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no exit within 10 s")), 10_000).unref());
  return {
    proc,
    exit: Promise.race([exited, timeout]),
    status: () => Buffer.concat(status).toString(),
    output: () => Buffer.concat(output),
    outputAfterExit: () => outputAfterExit,
  };
}
