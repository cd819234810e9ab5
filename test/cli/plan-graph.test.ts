/**
 * `troupe plan --output dot|mermaid`: the group graph, each group a node
 * listing its tasks with the lead marked, each input an edge labelled with
 * the tasks it links. The DOT is read back by the real Graphviz (`dot
 * -Tjson`: the nodes, edges and the text lines it draws); the Mermaid is
 * checked for its structure.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, TestHome, troupe } from "../run/helpers.js";

const SPEC = `workflow:
  name: graph
  pool: gpu-pool
  groups:
  - name: prepare-data
    tasks:
    - name: prepare
      image: alpine:3.18
      command: [true]
  - name: training
    tasks:
    - name: worker
      image: alpine:3.18
      command: [true]
      inputs: [{task: prepare}]
    - name: trainer
      lead: true
      image: alpine:3.18
      command: [true]
      inputs:
      - task: prepare
      - url: 's3://bucket/we"ird<path>#1'
  - name: evaluation
    tasks:
    - name: evaluate
      image: alpine:3.18
      command: [true]
      inputs: [{task: prepare}, {task: trainer}, {task: "run-7:model"}]
      hostNetwork: true
`;

let home: TestHome;
let file: string;

async function plan(output: string): Promise<string> {
  const result = await troupe(["plan", file, "--output", output], { home: home.home });
  expect(result.code, result.stderr).toBe(0);
  // Warnings (workflow.pool, not done yet) go to stderr; stdout is the graph alone.
  expect(result.stderr).toContain("W_NOT_IMPLEMENTED");
  return result.stdout;
}

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  file = home.spec("graph", SPEC);
}, 200_000);

afterAll(() => home?.remove());

interface DotJson {
  objects: Array<{ _gvid: number; name: string; label: string; _ldraw_?: Array<{ op: string; text?: string }> }>;
  edges: Array<{ tail: number; head: number; label: string; _ldraw_?: Array<{ op: string; text?: string }> }>;
}

const drawnText = (ops: Array<{ op: string; text?: string }> | undefined) => (ops ?? []).filter((o) => o.op === "T").map((o) => o.text);

describe("troupe plan --output dot", () => {
  it("is a graph Graphviz reads: groups as nodes listing their tasks (lead marked), inputs as labelled edges", async () => {
    const dot = await plan("dot");
    const found = spawnSync("dot", ["-V"], { encoding: "utf8" });
    expect(found.error, "Graphviz's `dot` is needed (apt-get install graphviz; scripts/test.sh installs it)").toBeUndefined();
    const json = JSON.parse(execFileSync("dot", ["-Tjson"], { input: dot, encoding: "utf8" })) as DotJson & { label: string };
    expect(json.label).toBe("workflow graph");
    const byName = new Map(json.objects.map((o) => [o.name, o]));
    const lines = (id: string) => drawnText(byName.get(id)?._ldraw_);
    expect(lines("g0")).toEqual(["[prepare-data]", "prepare"]);
    expect(lines("g1")).toEqual(["[training]", "worker", "★ trainer (lead)"]);
    expect(lines("g2")).toEqual(["[evaluation]", "evaluate"]);
    // Sources outside the workflow: the URL as written (its quote and brackets intact), another workflow's task.
    const sources = json.objects.filter((o) => o.name.startsWith("s")).map((o) => drawnText(o._ldraw_));
    expect(sources).toEqual([['s3://bucket/we"ird<path>#1'], ["run-7:model"]]);

    const nameOf = (gvid: number) => json.objects.find((o) => o._gvid === gvid)!.name;
    // Graphviz lists edges in an order of its own.
    const edges = json.edges.map((e) => [nameOf(e.tail), nameOf(e.head), drawnText(e._ldraw_)]);
    expect(edges).toHaveLength(5);
    expect(edges).toEqual(
      expect.arrayContaining([
        ["g0", "g1", ["prepare → worker", "prepare → trainer"]],
        ["s0", "g1", ["→ trainer"]],
        ["g0", "g2", ["prepare → evaluate"]],
        ["g1", "g2", ["trainer → evaluate"]],
        ["s1", "g2", ["→ evaluate"]],
      ]),
    );
  });

  it("draws as SVG", async () => {
    const svg = execFileSync("dot", ["-Tsvg"], { input: await plan("dot"), encoding: "utf8" });
    expect(svg).toContain("<svg");
    expect(svg).toContain("★ trainer (lead)");
  });
});

describe("troupe plan --output mermaid", () => {
  it("is a Mermaid flowchart: every node defined once, every edge between defined nodes, labels quoted and escaped", async () => {
    const text = await plan("mermaid");
    const lines = text.trimEnd().split("\n");
    expect(lines.slice(0, 4)).toEqual(["---", 'title: "workflow graph"', "---", "flowchart TD"]);
    const nodes = new Map<string, string>();
    const edges: Array<[string, string, string]> = [];
    for (const line of lines.slice(4)) {
      // A label is one quoted string with no quote inside: Mermaid's entity codes (#34;) stand for those.
      const node = /^ {2}(\w+)(?:\["([^"]*)"\]|\[\("([^"]*)"\)\])$/.exec(line);
      const edge = /^ {2}(\w+) -->\|"([^"]*)"\| (\w+)$/.exec(line);
      if (node) {
        expect(nodes.has(node[1]!), `${node[1]} defined twice`).toBe(false);
        nodes.set(node[1]!, node[2] ?? node[3]!);
      } else if (edge) {
        edges.push([edge[1]!, edge[3]!, edge[2]!]);
      } else {
        throw new Error(`not a node or an edge: ${line}`);
      }
    }
    for (const [from, to] of edges) expect([nodes.has(from), nodes.has(to)], `${from} -> ${to}`).toEqual([true, true]);
    expect(nodes.get("g1")).toBe("<b>training</b><br/>worker<br/>★ trainer (lead)");
    expect(nodes.get("s0")).toBe("s3://bucket/we#34;ird#60;path#62;#35;1");
    expect(edges).toEqual([
      ["g0", "g1", "prepare → worker<br/>prepare → trainer"],
      ["s0", "g1", "→ trainer"],
      ["g0", "g2", "prepare → evaluate"],
      ["g1", "g2", "trainer → evaluate"],
      ["s1", "g2", "→ evaluate"],
    ]);
  });

  it("a workflow of single tasks: one node per task, no lead marked", async () => {
    const single = home.spec("single", "workflow:\n  name: s\n  tasks:\n  - {name: a, image: alpine:3.18, command: [true]}\n");
    const result = await troupe(["plan", single, "--output", "mermaid"], { home: home.home });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('  g0["<b>a-group</b><br/>a"]');
  });
});

it("another output is a usage error naming the choices", async () => {
  const result = await troupe(["plan", file, "--output", "svg"], { home: home.home });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("pretty, json, dot, mermaid");
});
