/** `files:` paths that cannot work, and `localpath`s that read outside the spec's folder. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadWorkflowSpec, type Diagnostic } from "../../src/spec/index.js";

const spec = (files: string[]) =>
  ["workflow:", "  name: wf", "  tasks:", "    - name: a", "      image: alpine", "      command: [echo]", "      files:"]
    .concat(files.map((l) => `        ${l}`))
    .join("\n") + "\n";

/** 1-based line and column of `needle`'s first character. */
function at(src: string, needle: string): { line: number; column: number } {
  const index = src.indexOf(needle);
  const before = src.slice(0, index);
  return { line: before.split("\n").length, column: index - before.lastIndexOf("\n") };
}

async function problems(src: string, baseDir?: string): Promise<Diagnostic[]> {
  return (await loadWorkflowSpec(src, baseDir === undefined ? {} : { baseDir })).diagnostics;
}

describe("file paths that cannot work are validation errors", () => {
  it.each([
    ["/tmp", "E_FILE_PATH_DIRECTORY", "standard directory"],
    ["/", "E_FILE_PATH_DIRECTORY", "standard directory"],
    ["/etc", "E_FILE_PATH_DIRECTORY", "standard directory"],
    ["/usr/local/bin/", "E_FILE_PATH_DIRECTORY", "standard directory"],
    ["/tmp/conf/", "E_FILE_PATH", "names a directory"],
    ["tmp/x.txt", "E_FILE_PATH", "must be absolute"],
    ["./x.txt", "E_FILE_PATH", "must be absolute"],
    ["/tmp/../etc/passwd", "E_FILE_PATH", "`..`"],
    ["/tmp/a:b.txt", "E_FILE_PATH", "`:`"],
    ['"/tmp/a,b.txt"', "E_FILE_PATH", "`,`"],
    ['"/tmp/a\\nb"', "E_FILE_PATH", "control character"],
    ["/proc/self/x", "E_RESERVED_PATH", "/proc"],
    ["/sys/fs/cgroup/cgroup.kill", "E_RESERVED_PATH", "/sys"],
    ["/dev/x", "E_RESERVED_PATH", "/dev"],
    ["/dev", "E_RESERVED_PATH", "/dev"],
    ["/osmo/x", "E_RESERVED_PATH", "/osmo"],
  ])("path: %s", async (target, code, words) => {
    const src = spec([`- path: ${target}`, "  contents: x"]);
    const found = await problems(src);
    expect(found.map((d) => d.code)).toEqual([code]);
    expect(found[0]).toMatchObject({ path: "workflow.tasks[0].files[0].path", ...at(src, target) });
    expect(found[0]?.message).toContain(words);
  });

  it.each(["/tmp/x.txt", "/run/script.sh", "/etc/app/config.ini", "/opt/tool/settings.json", "/home/user/.bashrc", "/tmp/a b.txt"])(
    "accepts %s",
    async (target) => {
      expect(await problems(spec([`- path: ${target}`, "  contents: x"]))).toEqual([]);
    },
  );

  it("reports a file under another file's path", async () => {
    const src = spec(["- path: /etc/app/conf/x.ini", "  contents: x", "- path: /etc/app", "  contents: y"]);
    const found = await problems(src);
    expect(found.map((d) => d.code)).toEqual(["E_FILE_PATH_CONFLICT"]);
    expect(found[0]).toMatchObject({ path: "workflow.tasks[0].files[0].path", ...at(src, "/etc/app/conf/x.ini") });
    expect(found[0]?.message).toBe("file path `/etc/app/conf/x.ini` is under `/etc/app`, which files[1] writes as a file");
  });

  it("reports duplicates, written differently, at the later one", async () => {
    const src = spec(["- path: /tmp/a", "  contents: x", "- path: /tmp/./a", "  contents: y"]);
    const found = await problems(src);
    expect(found.map((d) => d.code)).toEqual(["E_DUPLICATE_FILE_PATH"]);
    expect(found[0]).toMatchObject({ path: "workflow.tasks[0].files[1].path", ...at(src, "/tmp/./a") });
  });
});

describe("a localpath outside the spec file's folder", () => {
  let root: string;
  let folder: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-localpath-"));
    folder = path.join(root, "specs");
    fs.mkdirSync(path.join(folder, "data"), { recursive: true });
    fs.writeFileSync(path.join(folder, "data", "in.txt"), "inside\n");
    fs.writeFileSync(path.join(root, "secret.txt"), "outside\n");
    fs.symlinkSync(path.join(root, "secret.txt"), path.join(folder, "data", "link.txt"));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it.each([
    ["../secret.txt", () => path.join(root, "secret.txt")],
    ["data/../../secret.txt", () => path.join(root, "secret.txt")],
    ["data/link.txt", () => path.join(root, "secret.txt")],
    ["/etc/hostname", () => "/etc/hostname"],
  ])("warns for %s, naming the file it reads", async (localpath, file) => {
    if (localpath.startsWith("/") && !fs.existsSync(localpath)) return;
    const src = spec(["- path: /tmp/x", `  localpath: ${localpath}`]);
    const found = await problems(src, folder);
    expect(found.map((d) => `${d.severity} ${d.code}`)).toEqual(["warning W_LOCALPATH_OUTSIDE"]);
    expect(found[0]).toMatchObject({ path: "workflow.tasks[0].files[0].localpath", ...at(src, localpath) });
    expect(found[0]?.message).toContain(fs.realpathSync(file()));
  });

  it("refuses what cannot travel inlined: a device such as /dev/zero, a file larger than 7 MiB", async () => {
    fs.writeFileSync(path.join(folder, "big.bin"), Buffer.alloc(7 * 1024 * 1024 + 1));
    const zero = await problems(spec(["- path: /tmp/x", "  localpath: /dev/zero"]), folder);
    expect(zero.map((d) => d.code)).toContain("E_LOCALPATH_NOT_FILE");
    const big = await problems(spec(["- path: /tmp/x", "  localpath: big.bin"]), folder);
    expect(big.map((d) => d.code)).toEqual(["E_LOCALPATH_TOO_LARGE"]);
    expect(big[0]?.message).toMatch(/has 7340033 bytes; a file travels inlined in the spec, at most 7340032/);
  });

  it("says nothing for a file inside it", async () => {
    expect(await problems(spec(["- path: /tmp/x", "  localpath: data/in.txt"]), folder)).toEqual([]);
    expect(await problems(spec(["- path: /tmp/x", "  localpath: ./data/../data/in.txt"]), folder)).toEqual([]);
  });
});
