// Runs benchmark cases in fresh Node processes: each case's file is generated,
// then measured by `script --child FILE` (which prints its measurement as
// JSON) `runs` times; the row kept is the best by `key`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** `cases`: [kind, n, generate(n)]; returns one row per case: { kind, n, ...best measurement }. */
export function runCases(script, cases, runs, key) {
  const dir = mkdtempSync(join(tmpdir(), "troupe-bench-"));
  const rows = [];
  try {
    for (const [kind, n, generate] of cases) {
      const file = join(dir, `${kind.replace(/ /g, "-")}-${n}.yaml`);
      writeFileSync(file, generate(n));
      const measured = Array.from({ length: runs }, () =>
        JSON.parse(
          execFileSync(process.execPath, [new URL(script).pathname, "--child", file], {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "inherit"],
          }),
        ),
      );
      rows.push({ kind, n, ...measured.sort((a, b) => a[key] - b[key])[0] });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
