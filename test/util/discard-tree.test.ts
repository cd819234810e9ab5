import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { discardTree, emptyTrash } from "../../src/util/discard-tree.js";

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function root(): string {
  const dir = mkdtempSync(join(tmpdir(), "troupe-discard-"));
  roots.push(dir);
  return dir;
}

/** A tree of `count` files in 100 directories. */
function tree(at: string, count: number): void {
  for (let d = 0; d < 100; d++) {
    mkdirSync(join(at, `d${d}`), { recursive: true });
    for (let f = 0; f < count / 100; f++) writeFileSync(join(at, `d${d}`, `f${f}`), "x");
  }
}

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("not in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("discardTree", () => {
  it("frees the path at once and removes the tree in the background, not waited for", async () => {
    const base = root();
    const run = join(base, "runs", "r-1");
    tree(run, 20_000);
    const trash = join(base, "trash");
    discardTree(run, trash);
    // Back before 20,000 files could be removed: the tree is in the trash, under a name of its own.
    expect(existsSync(run)).toBe(false);
    const aside = readdirSync(trash);
    expect(aside).toHaveLength(1);
    expect(aside[0]).toMatch(new RegExp(`^r-1\\.${process.pid}\\.\\d+$`));
    expect(readdirSync(join(trash, aside[0]!))).toHaveLength(100);
    await until(() => readdirSync(trash).length === 0);
    expect(existsSync(join(base, "runs"))).toBe(true);
  });

  it("is nothing for a tree that is not there", () => {
    const base = root();
    expect(() => discardTree(join(base, "missing"), join(base, "trash"))).not.toThrow();
    expect(readdirSync(join(base, "trash"))).toEqual([]);
  });

  it("ends with nothing left although a process working in the tree still adds files for a while", async () => {
    const base = root();
    const run = join(base, "runs", "r-2");
    tree(run, 2_000);
    // A job's last helper, its working directory in the run's: files come for a second after the removal began.
    const writer = spawn("sh", ["-c", 'i=0; while [ $i -lt 50 ]; do mkdir -p d0/late && : > "d0/late/f$i"; i=$((i+1)); sleep 0.02; done'], {
      cwd: run,
      stdio: "ignore",
    });
    const wrote = new Promise((resolve) => writer.once("exit", resolve));
    discardTree(run, join(base, "trash"));
    await wrote;
    await until(() => readdirSync(join(base, "trash")).length === 0);
  });
});

describe("emptyTrash", () => {
  it("removes in the background what removals cut short left", async () => {
    const base = root();
    const trash = join(base, "trash");
    tree(join(trash, "r-3.1.1"), 1_000);
    mkdirSync(join(trash, "r-4.1.1"));
    emptyTrash(trash);
    await until(() => readdirSync(trash).length === 0);
  });

  it("is nothing without a trash", () => {
    expect(() => emptyTrash(join(root(), "none"))).not.toThrow();
  });
});
