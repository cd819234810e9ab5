/**
 * An attempt's control directory watched for troupe-init's files: through
 * inotify, and by polling where inotify cannot be had. A machine out of
 * inotify instances (128 per user over the whole machine; every container's
 * troupe-init holds one as root) made fs.watch throw EMFILE, and the
 * attempt failed to start (FAILED_START_ERROR, "EMFILE: too many open
 * files, watch '.../sandboxes/lead.0'"). Running a real machine out of them
 * would fail every other test and program here: the failing watch is a
 * stand-in that throws what fs.watch throws then.
 */
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { watchControlDir } from "../../src/runtime/container/control-watch.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function controlDir(): string {
  const dir = mkdtempSync("/var/tmp/troupe-control-watch-");
  dirs.push(dir);
  return dir;
}

/** Resolves once `ready` (written as troupe-init writes it: another name, renamed) is seen through `watch`. */
function seesReady(dir: string, watch?: Parameters<typeof watchControlDir>[2]): Promise<string | null> {
  return new Promise((resolve) => {
    const watcher = watchControlDir(
      dir,
      (name) => {
        if ((name === null || name === "ready") && existsReady(dir)) {
          watcher.close();
          resolve(name);
        }
      },
      watch,
    );
    setTimeout(() => {
      writeFileSync(join(dir, ".ready"), "iflink 7\n");
      renameSync(join(dir, ".ready"), join(dir, "ready"));
    }, 100);
  });
}

const existsReady = (dir: string) => existsSync(join(dir, "ready"));

describe("watching a container's control directory", () => {
  it("sees troupe-init's files through inotify", async () => {
    expect(await seesReady(controlDir())).toBe("ready");
  });

  it("looks every 50 ms where inotify cannot be had (EMFILE), and stops looking once closed", async () => {
    const emfile = () => {
      throw Object.assign(new Error("EMFILE: too many open files, watch"), { code: "EMFILE" });
    };
    const dir = controlDir();
    expect(await seesReady(dir, emfile)).toBeNull();
    let looks = 0;
    const watcher = watchControlDir(dir, () => looks++, emfile);
    await new Promise((resolve) => setTimeout(resolve, 300));
    watcher.close();
    const seen = looks;
    expect(seen).toBeGreaterThan(2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(looks).toBe(seen);
  });
});
