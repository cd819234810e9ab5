/**
 * Templates from the command line (the real CLI, real runs on the host
 * runtime): `validate --rendered` / `plan --rendered` print the file as
 * templating made it, a `--set` the template never uses is a warning, and
 * the tokens of a `localpath` file are substituted when the task runs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { load as parseYaml } from "js-yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, killStartedRuns, runJson, troupe } from "../run/helpers.js";

let home: TestHome;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);

afterEach(() => killStartedRuns());
afterAll(() => home?.remove());

const FANOUT = `default-values:
  seeds: 2
workflow:
  name: fan-{{ seeds }}
  tasks:
{% for s in range(seeds) %}
  - name: t{{ s }}
    image: alpine:3.18
    command: [echo, "seed {{ s }}", "{{output}}"]
{% endfor %}
`;

describe("--rendered", () => {
  it("validate --rendered prints the YAML after templating on stdout, problems and verdict on stderr", async () => {
    const file = home.spec("fanout", FANOUT);
    const result = await troupe(["validate", file, "--rendered", "--set", "seeds=3", "--set", "seed=5"], { home: home.home });
    expect(result.code, result.stderr).toBe(0);
    const rendered = parseYaml(result.stdout) as { workflow: { name: string; tasks: Array<{ name: string; command: string[] }> } };
    expect(rendered.workflow.name).toBe("fan-3");
    expect(rendered.workflow.tasks.map((t) => t.name)).toEqual(["t0", "t1", "t2"]);
    // Tokens stay as written: they are substituted when a task starts.
    expect(rendered.workflow.tasks[2]?.command).toEqual(["echo", "seed 2", "{{output}}"]);
    expect(result.stderr).toMatch(
      /warning W_UNUSED_VARIABLE: --set seed=5: the template never uses `seed`, so it has no effect \(did you mean `seeds`\?\)/,
    );
    expect(result.stderr).toMatch(/: valid \(0 errors, 1 warning\)/);
  });

  it("plan --rendered prints the rendered file even when it is invalid, and exits 1", async () => {
    const file = home.spec("fanout-bad", FANOUT.replace("image: alpine:3.18", "imgae: alpine:3.18"));
    const result = await troupe(["plan", file, "--rendered"], { home: home.home });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("  - name: t1\n    imgae: alpine:3.18\n");
    expect(result.stderr).toMatch(/:8:5: error E_UNKNOWN_FIELD: unknown field `imgae` in tasks\[1\]/);
    const json = await troupe(["plan", file, "--rendered", "--output", "json"], { home: home.home });
    const body = JSON.parse(json.stdout) as { valid: boolean; rendered: string; diagnostics: unknown[] };
    expect(body.valid).toBe(false);
    expect(body.rendered).toContain("name: fan-2");
  });

  it("prints no YAML when the template does not render", async () => {
    const file = home.spec("unsafe", FANOUT.replace("seed {{ s }}", "{{ ''.__class__ }}"));
    const result = await troupe(["validate", file, "--rendered"], { home: home.home });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/error E_TEMPLATE_UNSAFE: template access to the attribute '__class__' is not allowed/);
  });

  it("is in both commands' --help, with an example", async () => {
    for (const command of ["validate", "plan"]) {
      const help = await troupe([command, "--help"], { home: home.home });
      expect(help.stdout).toMatch(/--rendered\s+print the file after templating/);
      expect(help.stdout).toMatch(new RegExp(`\\$ troupe ${command} \\S+ .*--rendered`));
    }
  });
});

describe("a localpath file's tokens, in a real run", () => {
  it("are substituted when the task starts, as in an inline file", async () => {
    const dir = home.outsideTmp();
    fs.writeFileSync(path.join(dir, "report.sh"), 'echo "id={{workflow_id}}"\necho written > {{output}}/mark\ncat {{output}}/mark\n');
    const file = path.join(dir, "wf.yaml");
    fs.writeFileSync(
      file,
      `workflow:
  name: localpath-tokens
  tasks:
  - name: report
    image: alpine:3.18
    command: [sh, /opt/report.sh]
    files:
    - path: /opt/report.sh
      localpath: report.sh
`,
    );
    const run = await runJson(file, { home: home.home, extra: ["--runtime", "host", "--isolation", "none"] });
    expect(run.code, run.stderr).toBe(0);
    expect(home.log(run.record.id, "report")).toBe(`id=${run.record.id}\nwritten\n`);
  });
});
