/**
 * `troupe validate` of a file with more problems than are listed (issue 11):
 * the first 1,000, one line for the rest, and counts that include them.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin", "troupe");

function validate(file: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, "validate", file, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("troupe validate of a file with 1,500 problems", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-many-"));
  const file = path.join(dir, "many.yaml");
  const lines = ["workflow:", "  name: many", "  tasks:"];
  for (let i = 0; i < 1500; i++) lines.push(`  - {name: t${i}, image: alpine, command: [run], inputs: [{task: nope${i}}]}`);
  fs.writeFileSync(file, lines.join("\n") + "\n");

  it("lists 1,000, says how many more, and counts them all", () => {
    const pretty = validate(file);
    expect(pretty.status).toBe(1);
    const out = pretty.stdout.trim().split("\n");
    expect(out).toHaveLength(1001);
    expect(out[999]).toMatch(/^.*many\.yaml:1003:\d+: error E_UNKNOWN_INPUT_TASK: task `t999`/);
    expect(out[1000]).toBe(
      `${file}: error E_MORE_PROBLEMS: ... and 500 more problems (500 errors, 0 warnings), not listed: only the first 1,000 are (fix these first; the same mistake is often repeated)`,
    );
    expect(pretty.stderr).toContain("invalid (1500 errors, 0 warnings)");

    const json = JSON.parse(validate(file, "--output", "json").stdout) as { errors: number; warnings: number; diagnostics: unknown[] };
    expect(json).toMatchObject({ errors: 1500, warnings: 0 });
    expect(json.diagnostics).toHaveLength(1001);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
