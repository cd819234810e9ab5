/**
 * Fields troupe accepts but does not act on yet are warned about, once per
 * field per task (resource entry, workflow), at their place in the file, by
 * validate, plan, run and `workflow submit`: nothing accepted is silently
 * ignored.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadWorkflowSpec, type Diagnostic } from "../../src/spec/index.js";
import { NOT_IMPLEMENTED } from "../../src/spec/rules/not-implemented.js";
import { ensureBuilt, TestHome, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";

/** 1-based line and column of `needle`'s first character. */
function at(src: string, needle: string): { line: number; column: number } {
  const index = src.indexOf(needle);
  if (index < 0) throw new Error(`${needle} is not in the spec`);
  const before = src.slice(0, index);
  return { line: before.split("\n").length, column: index - before.lastIndexOf("\n") };
}

const notImplemented = (diagnostics: Diagnostic[]) => diagnostics.filter((d) => d.code === "W_NOT_IMPLEMENTED");

/** Every field of the table, each asked for once, with the key each warning must point at. */
const EVERYTHING = `workflow:
  name: wf
  pool: gpu-pool
  resources:
    default:
      cpu: 1
      platform: dgx-h100
      nodesExcluded: [node-7]
      topology:
      - key: rack
      storage: 10Gi
  tasks:
  - name: producer
    image: alpine:3.18
    command: [sh, -c, "echo hi > {{output}}/x"]
    credentials:
      registry-secret: /secrets/registry
    checkpoint:
      path: /ckpt
      url: s3://bucket/ckpt
      frequency: 10m
    volumeMounts: ["/data:/data"]
    hostNetwork: true
    outputs:
    - url: s3://bucket/out
  - name: consumer
    image: alpine:3.18
    command: [cat, "{{input:0}}/x"]
    inputs:
    - task: producer
      regex: ".*\\\\.txt"
    - url: s3://bucket/data
`;

/** The key each warning points at, in the order of the file. */
const EXPECTED: Array<{ path: string; key: string; label: string }> = [
  { path: "workflow.pool", key: "pool:", label: "workflow.pool" },
  { path: "workflow.resources.default.platform", key: "platform:", label: "platform" },
  { path: "workflow.resources.default.nodesExcluded", key: "nodesExcluded:", label: "nodesExcluded" },
  { path: "workflow.resources.default.topology", key: "topology:", label: "topology" },
  { path: "workflow.resources.default.storage", key: "storage:", label: "storage" },
];

describe("fields accepted but not implemented", () => {
  it("the test covers every field of the table", () => {
    expect(new Set(EXPECTED.map((e) => e.label))).toEqual(new Set(NOT_IMPLEMENTED.map((e) => e.label)));
  });

  it("each is a warning naming the field, with its path, line and column; the file stays valid", async () => {
    const result = await loadWorkflowSpec(EVERYTHING);
    expect(result.ok, JSON.stringify(result.diagnostics)).toBe(true);
    const warnings = notImplemented(result.diagnostics);
    expect(warnings.map((d) => d.path)).toEqual(EXPECTED.map((e) => e.path));
    for (const [i, expected] of EXPECTED.entries()) {
      const d = warnings[i]!;
      expect(d).toMatchObject({ severity: "warning", ...at(EVERYTHING, expected.key) });
      expect(d.message).toContain(`\`${expected.label}\``);
      const entry = NOT_IMPLEMENTED.find((e) => e.label === expected.label)!;
      expect(d.message).toContain(
        entry.only ? `has an effect only on ${entry.only}; elsewhere ${entry.instead}` : "has no effect yet in troupe",
      );
    }
    // `credentials:`, `checkpoint:`, `volumeMounts` and `hostNetwork` are implemented (issue 15): no warning for them.
    const implemented = [".credentials", ".checkpoint", ".volumeMounts", ".hostNetwork"];
    expect(warnings.some((d) => implemented.some((field) => d.path.endsWith(field)))).toBe(false);
    expect(warnings[1]!.message).toContain("(resource `default`)");
  });

  it("implemented task fields are not warned about, however often a task asks", async () => {
    const src = `workflow:
  name: wf
  tasks:
  - name: a
    image: alpine:3.18
    command: [true]
    outputs: [{url: s3://x/1}, {url: s3://x/2}]
  - name: b
    image: alpine:3.18
    command: [true]
    inputs:
    - {task: a, regex: x}
    - {task: a, regex: y}
    hostNetwork: true
  - name: c
    image: alpine:3.18
    command: [true]
    inputs: [{task: a, regex: z}]
`;
    const paths = notImplemented((await loadWorkflowSpec(src)).diagnostics).map((d) => d.path);
    expect(paths).toEqual([]);
  });

  it("a field that asks for nothing (false, an empty list or mapping) and implemented fields are not warned about", async () => {
    const src = `workflow:
  name: wf
  groups:
  - name: g
    tasks:
    - name: a
      lead: true
      image: alpine:3.18
      command: [true]
      hostNetwork: false
      privileged: true
      volumeMounts: []
      credentials: {}
      outputs: []
`;
    expect((await loadWorkflowSpec(src)).diagnostics).toEqual([]);
  });

  it("places the warning in the file as written when the file is a template", async () => {
    const src = `default-values:
  n: 2
workflow:
  name: wf
  resources:
{% for i in range(n) %}
    r{{ i }}:
      storage: 10Gi
{% endfor %}
  tasks:
  - name: t
    image: alpine:3.18
    command: [true]
`;
    const warnings = notImplemented((await loadWorkflowSpec(src)).diagnostics);
    expect(warnings.map((d) => [d.path, d.line])).toEqual([
      ["workflow.resources.r0.storage", at(src, "storage").line],
      ["workflow.resources.r1.storage", at(src, "storage").line],
    ]);
  });
});

describe("validate, plan, run and workflow submit say so", () => {
  let home: TestHome;
  let server: StartedServer | undefined;
  let token: string;
  const SPEC = `workflow:
  name: warned
  resources:
    default:
      storage: 10Gi
  tasks:
  - name: a
    image: alpine:3.18
    command: [echo, hi]
`;
  const LINE = /warned-\w+\.yaml:5:7: warning W_NOT_IMPLEMENTED: `storage` \(resource `default`\) has an effect only on Kubernetes pools/;

  beforeAll(async () => {
    await ensureBuilt();
    home = new TestHome();
    const serverHome = home.outsideTmp();
    const created = await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home });
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
  }, 200_000);

  afterAll(async () => {
    await server?.stop();
    home?.remove();
  });

  it.each([
    ["validate", [], "stdout"],
    ["plan", [], "stderr"],
    ["run", ["--runtime", "host", "--isolation", "none"], "stderr"],
  ] as const)("troupe %s", async (command, extra, stream) => {
    const file = home.spec("warned", SPEC);
    const result = await troupe([command, file, ...extra], { home: home.home, timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result[stream]).toMatch(LINE);
    expect(result[stream].match(/W_NOT_IMPLEMENTED/g)).toHaveLength(1);
  });

  it.each([["submit", "--wait"], ["validate"]])("troupe workflow %s", async (verb, ...extra) => {
    const file = home.spec("warned", SPEC);
    const env = { TROUPE_SERVER: server!.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() };
    const result = await troupe(["workflow", verb, file, ...extra], { home: home.home, env, timeoutMs: 60_000 });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).toMatch(LINE);
  });

  it("troupe workflow submit of a spec with localpath files (inlined here): the line of the file as written, once", async () => {
    const file = home.spec("warned", SPEC + "    files:\n    - {path: /tmp/data.txt, localpath: data.txt}\n");
    writeFileSync(join(dirname(file), "data.txt"), "hi\n");
    const env = { TROUPE_SERVER: server!.url, TROUPE_TOKEN: token, XDG_CONFIG_HOME: home.outsideTmp() };
    const result = await troupe(["workflow", "submit", file, "--wait"], { home: home.home, env, timeoutMs: 60_000 });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).toMatch(LINE);
    expect(result.stderr.match(/W_NOT_IMPLEMENTED/g)).toHaveLength(1);
  });
});
