/**
 * A FILE argument that names no file, or a directory: every command that
 * takes one says so plainly and exits 2 (bad usage), the code README gives.
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, TestHome, troupe } from "../run/helpers.js";

let home: TestHome;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterAll(() => home?.remove());

const COMMANDS = [["run"], ["validate"], ["plan"], ["workflow", "submit"], ["workflow", "validate"]];

describe("a FILE that is missing or a directory", () => {
  it.each(COMMANDS.map((c) => [c.join(" "), c]))("`troupe %s`: exit 2 with a clear message, for both", async (_name, command) => {
    const cases = [
      { file: path.join(home.specs, "does-not-exist.yaml"), message: /: no such file/ },
      { file: home.specs, message: / is a directory, not a workflow file/ },
    ];
    for (const { file, message } of cases) {
      // The client's server is one nobody answers at: the file is looked at before any request.
      const result = await troupe([...command, file], {
        home: home.home,
        env: { NO_COLOR: "1", TROUPE_SERVER: "http://127.0.0.1:9", TROUPE_TOKEN: "trp_x", XDG_CONFIG_HOME: home.specs },
      });
      expect(result.code, `${file}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toContain(file);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(result.stdout).toBe("");
    }
  });
});
