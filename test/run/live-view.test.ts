/**
 * On a terminal, `troupe run` keeps a live panel of groups and task statuses
 * under the prefixed output. `script` (util-linux) gives the run a real pty.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ensureBuilt, EXAMPLES, TestHome } from "./helpers.js";

const home = new TestHome();
beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => home.remove());

describe("the live view on a terminal", () => {
  it("draws and redraws a panel of groups and tasks, prefixes output, and ends with the summary table", () => {
    const command = `${process.execPath} ${BIN} run ${path.join(EXAMPLES, "data_passing.yaml")} --isolation none`;
    const screen = execFileSync("script", ["-qec", command, "/dev/null"], {
      env: { ...process.env, TROUPE_HOME: home.home, NO_COLOR: undefined, FORCE_COLOR: undefined, COLUMNS: "120" },
      encoding: "utf8",
      timeout: 60_000,
    });
    // The panel: one line per group with its tasks, a count line, cleared (cursor up, clear below) before redraws.
    expect(screen).toMatch(/prepare-data: \S*WAITING/);
    expect(screen).toMatch(/evaluation: \S*RUNNING/);
    expect(screen).toMatch(/tasks: \S*COMPLETED 3/);
    expect(screen).toContain("\x1b[3A\x1b[0J");
    // Colours on a terminal, and the task output with its prefix.
    expect(screen).toMatch(/\x1b\[3\dmevaluate\s+\|\x1b\[39m samples: 1\.\.\., model: 100/);
    expect(screen).toMatch(/run data-passing-\d+: \x1b\[32mCOMPLETED/);
  });
});
