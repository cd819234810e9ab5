/**
 * bin/troupe's V8 code caches, on a copy of the built launcher and bundle (the checkout's own caches are left
 * alone): which file each command uses, that a cache one run wrote is taken by the next (V8 refuses a cache made
 * under other flags, and `troupe run` changes one as it runs), that a failed start writes no run cache, and that
 * a cache stamped for another build of the bundle is not used; and that the bundle is ASCII, which bin/troupe
 * reads as latin1.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../run/helpers.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let copy: string;
let bundleDir: string;
let home: string;

beforeAll(async () => {
  await ensureBuilt();
  copy = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-code-cache-"));
  fs.mkdirSync(path.join(copy, "bin"));
  for (const file of ["troupe", "package.json"]) fs.copyFileSync(path.join(ROOT, "bin", file), path.join(copy, "bin", file));
  bundleDir = path.join(copy, "dist", "bundle");
  fs.mkdirSync(bundleDir, { recursive: true });
  for (const entry of fs.readdirSync(path.join(ROOT, "dist", "bundle")))
    if (!entry.endsWith(".cache")) fs.copyFileSync(path.join(ROOT, "dist", "bundle", entry), path.join(bundleDir, entry));
  // What the bundle finds beside it: its node_modules, the built helpers, the package's version.
  for (const shared of ["node_modules", "native", "package.json"]) fs.symlinkSync(path.join(ROOT, shared), path.join(copy, shared));
  home = path.join(copy, "home");
  fs.writeFileSync(
    path.join(copy, "one.yaml"),
    'workflow:\n  name: cache\n  tasks:\n  - name: t\n    image: alpine\n    command: ["true"]\n',
  );
}, 240_000);

afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

function troupe(...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, TROUPE_HOME: home, NO_COLOR: "1" };
  delete env.TROUPE_RUNTIME;
  const result = spawnSync(process.execPath, [path.join(copy, "bin", "troupe"), ...args], {
    cwd: copy,
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return result;
}

const cacheFile = (name: string) => path.join(bundleDir, name);
/** The file's identity: a rewrite (a new file renamed over it) changes it. */
const identity = (name: string) => {
  const { ino, size } = fs.statSync(cacheFile(name));
  return `${ino}:${size}`;
};

describe("bin/troupe's code caches", () => {
  it("a command without a cache writes the shared one, stamped for this bundle; the next command takes it as it is", () => {
    expect(troupe("--version").status).toBe(0);
    const bundle = fs.statSync(path.join(bundleDir, "troupe.cjs"));
    const bytes = fs.readFileSync(cacheFile("troupe.cjs.cache"));
    expect(bytes.readDoubleLE(0)).toBe(bundle.mtimeMs);
    expect(bytes.readDoubleLE(8)).toBe(bundle.size);
    const before = identity("troupe.cjs.cache");
    expect(troupe("validate", "one.yaml").status).toBe(0);
    expect(identity("troupe.cjs.cache")).toBe(before);
  });

  it("a run that never ran its workflow writes no run cache; one that did writes its runtime's, which the next run takes", () => {
    expect(troupe("run", "missing.yaml", "--runtime", "host", "--isolation", "none").status).toBe(2);
    expect(fs.existsSync(cacheFile("troupe.cjs.run-host.cache"))).toBe(false);
    const first = troupe("run", "one.yaml", "--runtime", "host", "--isolation", "none");
    expect(first.status, first.stderr).toBe(0);
    const made = identity("troupe.cjs.run-host.cache");
    // Larger than the shared one: the engine's, the store's and the host runtime's functions too.
    expect(fs.statSync(cacheFile("troupe.cjs.run-host.cache")).size).toBeGreaterThan(fs.statSync(cacheFile("troupe.cjs.cache")).size);
    // Taken, not refused and written again: the run set V8's heap flag, and set it back before writing.
    expect(troupe("run", "one.yaml", "--runtime=host", "--isolation", "none").status).toBe(0);
    expect(identity("troupe.cjs.run-host.cache")).toBe(made);
  }, 120_000);

  it("a cache stamped for another build of the bundle is not used, and is written again for this one", () => {
    const file = cacheFile("troupe.cjs.cache");
    const bytes = fs.readFileSync(file);
    bytes.writeDoubleLE(bytes.readDoubleLE(0) - 1000, 0);
    fs.writeFileSync(file, bytes);
    expect(troupe("--version").status).toBe(0);
    expect(fs.readFileSync(file).readDoubleLE(0)).toBe(fs.statSync(path.join(bundleDir, "troupe.cjs")).mtimeMs);
  });

  it("the bundle is ASCII, so that reading it as latin1 (bin/troupe) is reading it as UTF-8", () => {
    const bytes = fs.readFileSync(path.join(ROOT, "dist", "bundle", "troupe.cjs"));
    expect(bytes.findIndex((byte) => byte > 0x7f)).toBe(-1);
  });

  it("a runtime's name that is no plain word makes no path of its own", () => {
    troupe("run", "one.yaml", "--runtime", "../../x");
    expect(fs.readdirSync(bundleDir).filter((name) => name.includes("x.cache") || name.includes(".."))).toEqual([]);
  });
});
