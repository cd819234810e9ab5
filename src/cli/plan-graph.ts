/**
 * The plan as a picture: its groups as nodes listing their tasks (the lead
 * marked), and what each takes from another (`inputs:`) as labelled edges,
 * in Graphviz's DOT (`troupe plan --output dot | dot -Tsvg`) or Mermaid
 * (Markdown that GitHub and most editors draw).
 */
import type { CompiledGroup, CompiledWorkflow } from "../plan/index.js";

/** What a graph shows: the same for both languages. */
interface PlanGraph {
  title: string;
  groups: Array<{ id: string; name: string; tasks: Array<{ name: string; lead: boolean }> }>;
  /** Data from outside the workflow (URLs, other workflows' tasks). */
  sources: Array<{ id: string; label: string }>;
  edges: Array<{ from: string; to: string; label: string[] }>;
}

function graphOf(plan: CompiledWorkflow): PlanGraph {
  const groups = plan.groups.map((g) => ({
    id: `g${g.index}`,
    name: g.name,
    tasks: g.tasks.map((t) => ({ name: t.name, lead: t.lead && g.tasks.length > 1 })),
  }));
  const sources = new Map<string, { id: string; label: string }>();
  const edges = new Map<string, { from: string; to: string; label: string[] }>();
  const edge = (from: string, to: CompiledGroup, line: string) => {
    const key = `${from}->${to.index}`;
    const found = edges.get(key) ?? { from, to: `g${to.index}`, label: [] };
    if (!found.label.includes(line)) found.label.push(line);
    edges.set(key, found);
  };
  const source = (label: string) => {
    const existing = sources.get(label) ?? { id: `s${sources.size}`, label };
    sources.set(label, existing);
    return existing.id;
  };
  for (const group of plan.groups) {
    for (const task of group.tasks) {
      for (const input of task.inputs) {
        if (input.kind === "task") edge(`g${input.group}`, group, `${input.task} → ${task.name}`);
        else if (input.kind === "workflow-task") edge(source(`${input.workflowId}:${input.task}`), group, `→ ${task.name}`);
        else edge(source(input.url), group, input.regex === undefined ? `→ ${task.name}` : `${input.regex} → ${task.name}`);
      }
    }
  }
  return { title: `workflow ${plan.name}`, groups, sources: [...sources.values()], edges: [...edges.values()] };
}

const taskLine = (t: { name: string; lead: boolean }) => (t.lead ? `★ ${t.name} (lead)` : t.name);

/** A DOT double-quoted string: `"` and `\` escaped, newlines as DOT's left-justified line breaks. */
function dotString(lines: readonly string[], breakAfterLast = true): string {
  const escaped = lines.map((l) => l.replace(/\\/g, "\\\\").replace(/"/g, '\\"'));
  return `"${escaped.join("\\l")}${breakAfterLast ? "\\l" : ""}"`;
}

export function planToDot(plan: CompiledWorkflow): string {
  const graph = graphOf(plan);
  const out = [
    "digraph workflow {",
    `  label=${dotString([graph.title], false)};`,
    "  labelloc=t;",
    "  rankdir=TB;",
    '  node [shape=box, style=rounded, fontname="Helvetica"];',
    '  edge [fontname="Helvetica", fontsize=10];',
  ];
  for (const g of graph.groups) {
    out.push(`  ${g.id} [label=${dotString([`[${g.name}]`, ...g.tasks.map(taskLine)])}];`);
  }
  for (const s of graph.sources) out.push(`  ${s.id} [shape=cylinder, style=dashed, label=${dotString([s.label], false)}];`);
  for (const e of graph.edges) out.push(`  ${e.from} -> ${e.to} [label=${dotString(e.label)}];`);
  out.push("}");
  return out.join("\n");
}

/** Text inside a Mermaid quoted label: its quotes and markup characters as entity codes. */
function mermaidText(text: string): string {
  return text.replace(/[#"<>&]/g, (c) => `#${c.charCodeAt(0)};`);
}

export function planToMermaid(plan: CompiledWorkflow): string {
  const graph = graphOf(plan);
  const out = ["---", `title: ${JSON.stringify(graph.title)}`, "---", "flowchart TD"];
  for (const g of graph.groups) {
    const lines = [`<b>${mermaidText(g.name)}</b>`, ...g.tasks.map((t) => mermaidText(taskLine(t)))];
    out.push(`  ${g.id}["${lines.join("<br/>")}"]`);
  }
  for (const s of graph.sources) out.push(`  ${s.id}[("${mermaidText(s.label)}")]`);
  for (const e of graph.edges) out.push(`  ${e.from} -->|"${e.label.map(mermaidText).join("<br/>")}"| ${e.to}`);
  return out.join("\n");
}
