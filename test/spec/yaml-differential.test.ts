/**
 * The two YAML readers must agree on every file: the fast one (js-yaml) gives
 * the careful one's value, or declines and leaves the file to it. Checked over
 * a generated corpus of the YAML features workflow files meet (and some they
 * should not): merge keys, anchors and aliases, comments holding `&`, `*`, `!`
 * and `<<:`, tags, several documents, duplicate keys, flow and block styles,
 * block scalars, every way of writing numbers, booleans and nulls, odd keys.
 */
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec } from "../../src/spec/index.js";
import { DiagnosticBag } from "../../src/spec/diagnostics.js";
import { MAX_YAML_DEPTH, readCarefully } from "../../src/spec/yaml-careful.js";
import { DECLINED, readFast } from "../../src/spec/yaml-fast.js";

/** mulberry32: a small seeded generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCALARS = [
  "1",
  "-0",
  "+12",
  "012",
  "0o17",
  "-0o17",
  "0x1F",
  "-0x1F",
  "+0x1F",
  "0b101",
  "1_000",
  "1.",
  ".5",
  "-.5",
  "+.5",
  "1e3",
  "1E+3",
  "1.5e-2",
  "1_0.5",
  "0.",
  "00",
  "09",
  "0o8",
  "1e",
  ".inf",
  "-.Inf",
  "+.INF",
  ".nan",
  ".NaN",
  "12345678901234567890",
  "true",
  "True",
  "TRUE",
  "tRUE",
  "false",
  "yes",
  "no",
  "on",
  "off",
  "y",
  "n",
  "null",
  "Null",
  "NULL",
  "nULL",
  "~",
  "",
  "2001-12-14",
  "1:30",
  "a b",
  "a#b",
  "a #b",
  "x: y",
  "'it''s'",
  "''",
  '""',
  '"\\x41\\u00e9\\t"',
  "'\\t'",
  '"a\\\nb"',
  "hello!",
  "a&b",
  "a *b",
  "cat <<EOF",
  "'<<'",
  "'&x'",
  "'*y'",
  "'!z'",
  "http://x?y=1",
  "echo ${A}: b",
  "[]",
  "{}",
];
const KEYS = ["a", "b", "name", "'q'", '"dq"', "1", "1.50", "-0", "true", "null", "~", "0x10", ".inf", "'<<'", "k-1", "k_1", "a b"];
const COMMENTS = ["# &x", "# *y", "# !z", "# <<: q", "# ? k", "# [a]: b", "#&x", "# plain"];
const TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!foo", "!"];

function generate(rand: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const anchors: string[] = [];
  let anchorCount = 0;

  const scalar = (): string => {
    const r = rand();
    if (r < 0.02) return `${pick(TAGS)} ${pick(SCALARS)}`;
    if (r < 0.04 && anchors.length > 0) return `*${pick(anchors)}`;
    if (r < 0.045) return "*nope";
    if (r < 0.06) return `&s${anchorCount} ${anchorsAdd(`s${anchorCount++}`)}${pick(SCALARS)}`;
    return pick(SCALARS);
  };
  const anchorsAdd = (name: string): string => {
    anchors.push(name);
    return "";
  };
  const flow = (depth: number): string => {
    const r = rand();
    const n = Math.floor(rand() * 3);
    if (depth > 2 || r < 0.4) return scalar();
    if (r < 0.7) return `[${Array.from({ length: n }, () => flow(depth + 1)).join(", ")}${rand() < 0.1 ? "," : ""}]`;
    if (r < 0.8) return `{<<: ${rand() < 0.5 ? `{${pick(KEYS)}: ${scalar()}}` : `[{a: 1}, {a: 2, b: 3}]`}, ${pick(KEYS)}: ${scalar()}}`;
    return `{${Array.from({ length: n }, () => `${pick(KEYS)}: ${flow(depth + 1)}`).join(", ")}}`;
  };
  const block = (indent: string, depth: number, lines: string[]): void => {
    const n = 1 + Math.floor(rand() * 4);
    const seq = rand() < 0.35;
    for (let i = 0; i < n; i++) {
      const lead = seq ? `${indent}-${rand() < 0.2 ? ` ${pick(KEYS)}:` : ""} ` : `${indent}${pick(KEYS)}:`;
      const r = rand();
      const props = rand() < 0.1 ? ` &m${anchorCount}${anchorsAdd(`m${anchorCount++}`)}` : "";
      if (!seq && r < 0.08) {
        lines.push(`${indent}<<: ${anchors.length > 0 && rand() < 0.5 ? `*${pick(anchors)}` : flow(1)}`);
      } else if (depth < 3 && r < 0.35) {
        lines.push(`${lead}${seq ? props.trim() : props}`.replace(/- $/, "-"));
        block(indent + "  ", depth + 1, lines);
      } else if (r < 0.45) {
        lines.push(`${lead} ${pick(["|", ">", "|-", "|+", ">-", "|2"])}`, `${indent}  line one`, `${indent}  ${pick(SCALARS)}`, "");
      } else if (r < 0.5) {
        lines.push(`${lead} ${pick(COMMENTS)}`);
      } else if (r < 0.62) {
        // A node over several lines, its lines indented more, as much or less than allowed.
        const cont = () => pick([indent + "   ", indent + "  ", indent + " ", indent, indent.slice(1), ""]);
        const [open, close] = pick([
          ['"', '"'],
          ["'", "'"],
          ["[", "]"],
          ["{a: ", "}"],
          ["[[", "]]"],
          ["", ""],
          ['"a\\', '"'],
          ["['", "']"],
        ]);
        const shape = rand();
        if (shape < 0.3) lines.push(`${lead} ${open}x,${rand() < 0.2 ? " # c" : ""}`, `${cont()}y${close}`);
        else if (shape < 0.55) lines.push(`${lead} ${open}`, `${cont()}x, y`, `${cont()}${close}`);
        else if (shape < 0.7) lines.push(`${lead} ${open}x,`, "", `${cont()}y${close}`);
        else if (shape < 0.85) lines.push(`${lead} ${open}x,`, `${cont()}# c`, `${cont()}y${close}`);
        else lines.push(`${lead} ${open}x, ${open}y,`, `${cont()}z${close}${close}`);
      } else {
        lines.push(`${lead} ${rand() < 0.3 ? flow(0) : scalar()}${rand() < 0.1 ? ` ${pick(COMMENTS)}` : ""}`);
      }
      if (rand() < 0.05) lines.push(pick(COMMENTS));
    }
  };
  const lines: string[] = [];
  if (rand() < 0.03) lines.push(pick(["%YAML 1.1", "%YAML 1.2"]), "---");
  block("", 0, lines);
  if (rand() < 0.05) lines.push(pick(["---", "...", "--- # &x"]), "b: 1");
  if (rand() < 0.05) lines.push("? [a, b]", ": c");
  if (rand() < 0.05) lines.push("[a]: c");
  return lines.join("\n") + "\n";
}

/** The careful reader; its value (built in one pass, yaml-value.ts) must be the `yaml` package's own. */
function careful(text: string): { value?: unknown; codes: string[] } {
  const bag = new DiagnosticBag();
  const read = readCarefully(text, bag);
  if (read) {
    const reference = read.doc.toJS({ maxAliasCount: -1 }) as unknown;
    expect(
      same(read.value, reference),
      `value differs from the package's on:\n${text}\nours: ${show(read.value)}\npackage: ${show(reference)}`,
    ).toBe(true);
  }
  return { value: read?.value, codes: bag.items.map((d) => d.code) };
}

/** Deep equality of plain values (NaN equals NaN, -0 is not 0, prototypes aside). */
function same(a: unknown, b: unknown): boolean {
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same((a as never)[k], (b as never)[k]));
}

const show = (value: unknown) =>
  JSON.stringify(value, (_k, v: unknown) => (typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0)) ? `<${v}>` : v));

function agree(text: string): boolean {
  const fast = readFast(text);
  if (fast === DECLINED) {
    careful(text);
    return false;
  }
  const slow = careful(text);
  expect(slow.codes, `careful reader fails where the fast one reads:\n${text}`).toEqual([]);
  expect(same(slow.value, fast), `readers disagree on:\n${text}\nfast: ${show(fast)}\ncareful: ${show(slow.value)}`).toBe(true);
  return true;
}

describe("the fast and the careful YAML reader", () => {
  it("agree on a generated corpus (the fast one reads or declines, never differs)", () => {
    const rand = random(Number(process.env.YAML_CORPUS_SEED ?? 11));
    let fast = 0;
    const total = Number(process.env.YAML_CORPUS_SIZE ?? 4000);
    for (let i = 0; i < total; i++) if (agree(generate(rand))) fast++;
    // Not vacuous: a good share of the corpus is read by the fast reader.
    expect(fast).toBeGreaterThan(total / 10);
  });

  it.each([
    ["an inline merge", "a:\n  <<: {b: 1, c: 2}\n  c: 3\n"],
    ["a merge of several", "a: {<<: [{b: 1}, {b: 2, c: 2}], c: 3}\n"],
    ["a merge before an explicit key", "a: {b: 2, <<: {b: 1}}\n"],
    ["numbers YAML 1.2 and js-yaml read differently", "a: [0b101, 1_000, -0x1F, +0x1F, -0o17, -.5, +.5, 0o17, 1e3]\n"],
    ["a null key", "~: 1\nnull: 2\n"],
    ["a collection key", "? [a, b]\n: c\n"],
    ["a flow collection key", "{[a]: 1}\n"],
    ["a tag on a quoted scalar", "a: !!float '1'\n"],
    ["a YAML 1.1 directive", "%YAML 1.1\n---\na: yes\n"],
  ])("agree on %s", (_what, text) => {
    agree(text);
  });

  it.each([
    ["a multi-line flow sequence closed at its key's indentation", 't:\n  command: [\n    sh, -c,\n    "echo hi"\n  ]\n'],
    ["a multi-line flow mapping in a sequence entry", "- env: {A: 1,\n    B: 2}\n- x\n"],
    ["a quoted scalar over lines", "t:\n  c: 'it''s\n   long'\n"],
  ])("the fast reader still reads %s", (_what, text) => {
    expect(agree(text)).toBe(true);
  });

  it.each([
    ["a flow sequence going on at its key's indentation", "t:\n  command: [a,\n  b]\n"],
    ["a quoted scalar going on at column 0", 'a: "x\nb"\n'],
    ["an inner bracket closing at the key's indentation", "a: [[\n   x\n]]\n"],
    ["an empty entry of a nested sequence", "-\n  -\n- x\n"],
    ["a flow collection as a key of a flow mapping", "a: {x: 1, {y: 2}}\n"],
  ])("the fast reader declines %s", (_what, text) => {
    expect(readFast(text)).toBe(DECLINED);
    agree(text);
  });

  it.each(["flow", "block"])("agree at the nesting limit (%s)", (style) => {
    for (let depth = MAX_YAML_DEPTH - 3; depth <= MAX_YAML_DEPTH + 3; depth++) {
      const text =
        style === "flow"
          ? "a: " + "[".repeat(depth - 2) + "1" + "]".repeat(depth - 2) + "\n"
          : Array.from({ length: depth - 1 }, (_, i) => " ".repeat(i) + "k:").join("\n") + " 1\n";
      const read = agree(text);
      const slow = careful(text);
      expect(read, `depth ${depth}`).toBe(depth <= MAX_YAML_DEPTH);
      expect(slow.codes, `depth ${depth}`).toEqual(depth <= MAX_YAML_DEPTH ? [] : ["E_YAML_TOO_DEEP"]);
    }
  });
});

describe("a workflow file means the same with and without a comment holding an anchor", () => {
  const workflow = [
    "workflow:",
    "  name: wf",
    "  tasks:",
    "    - <<: {image: alpine, command: [echo]}",
    "      name: a",
    "    - name: b",
    "      <<:",
    "        - {image: busybox}",
    "        - {image: ignored, command: [true]}",
  ].join("\n");

  it.each(["", "\n# &x", "\n# *x", "\n# !x"])("a merge key file with comment %j", async (comment) => {
    const r = await loadWorkflowSpec(workflow + comment + "\n");
    expect(r.diagnostics).toEqual([]);
    expect(r.spec?.workflow.tasks).toEqual([
      { name: "a", image: "alpine", command: ["echo"] },
      { name: "b", image: "busybox", command: ["true"] },
    ]);
  });
});
