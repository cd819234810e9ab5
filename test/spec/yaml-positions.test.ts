// The js-yaml position index answers as the `yaml` package's locator does,
// for every path of a corpus of files (and paths that do not exist), or
// says it cannot ("fallback"), in which case the locator asks the `yaml` package.
import { readdirSync, readFileSync } from "node:fs";
import * as jsYaml from "js-yaml";
import { LineCounter, parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import { SourceLocator } from "../../src/spec/yaml.js";
import { PositionIndex } from "../../src/spec/yaml-positions.js";

const { merge } = (jsYaml as unknown as { types: { merge: jsYaml.Type } }).types;
const schema = jsYaml.CORE_SCHEMA.extend([merge]);

const handmade = [
  `# comment
workflow:   # trailing
  name: "quoted: name"
  empty:
  also_empty:${" "}
  'single': 'x'
  "dq": {a: 1, b: [1, 2, {c: d}], e: }
  list:
  - a
  - - nested
    - seq
  -   spaced: 1
      more: 2
  block: |
    text: not a key
    more
  folded: >-
    x
  flow_seq: [a, "b", {k: v}]
  json: {"x":1,"y":[2,3]}
  multi:
    - name: t
      command: ["sh", "-c", "echo hi"]
      # comment in between
      inputs:
        - task: x
  nulls: ~
  last: end
`,
  `workflow:
  tasks:
  -   name: a
      image: b
  - {name: c,   image: d}
  -
    name: e
  - name: f
    x: [
      1,
      2
    ]
    y: {
      z: 1
    }
    "q": 'multi
      line'
    dup: 1
    dup: 2
`,
  "workflow: {name: x, tasks: [{name: a, inputs: [{task: b}]}, {name: b}]}\n",
  "- a\n- b: [c, d]\n",
];

function corpus(): Array<[string, string]> {
  const examples = new URL("../../examples/", import.meta.url);
  const files = readdirSync(examples).filter((f) => f.endsWith(".yaml"));
  return [
    ...handmade.map((text, i): [string, string] => [`handmade ${i}`, text]),
    ...files.map((f): [string, string] => [f, readFileSync(new URL(f, examples), "utf8")]),
  ];
}

function paths(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  const out = [path, [...path, "nonexistent"], [...path, 99]];
  if (value !== null && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) out.push(...paths(child, [...path, Array.isArray(value) ? Number(key) : key]));
  }
  return out;
}

describe("PositionIndex", () => {
  it.each(corpus())("places every node of %s as the yaml package does", (_name, text) => {
    let value: unknown;
    try {
      value = jsYaml.load(text, { schema });
    } catch {
      return; // a file js-yaml refuses is read by the yaml package alone
    }
    const index = PositionIndex.build(text, { schema }, value);
    expect(index).toBeDefined();
    const lineCounter = new LineCounter();
    const careful = new SourceLocator(text, parseDocument(text, { lineCounter, uniqueKeys: false, merge: true }), lineCounter);
    let answered = 0;
    for (const path of paths(value)) {
      for (const atKey of [false, true]) {
        const fast = index?.locate(path, atKey);
        if (fast === "fallback") continue;
        answered++;
        expect({ path, atKey, at: fast }).toEqual({ path, atKey, at: careful.locate(path, atKey) });
      }
    }
    expect(answered).toBeGreaterThan(0);
  });

  it.each(corpus())("read in part, places %s as read whole, or says the node is further on", (_name, text) => {
    let value: unknown;
    try {
      value = jsYaml.load(text, { schema });
    } catch {
      return;
    }
    const lineCounter = new LineCounter();
    const careful = new SourceLocator(text, parseDocument(text, { lineCounter, uniqueKeys: false, merge: true }), lineCounter);
    for (const stopAt of [0, 15, 40, 90, 200, 500, ...Array.from({ length: 24 }, (_, k) => Math.floor((text.length * k) / 24))]) {
      const index = PositionIndex.build(text, { schema }, value, stopAt);
      const stop = lineCounter.linePos(Math.min(stopAt, text.length));
      for (const path of paths(value)) {
        for (const atKey of [false, true]) {
          const partial = index?.locate(path, atKey);
          const whole = careful.locate(path, atKey);
          if (partial === "fallback") continue;
          if (partial === "beyond") {
            expect(whole.line > stop.line || (whole.line === stop.line && whole.column > stop.col), JSON.stringify({ path, stopAt })).toBe(
              true,
            );
          } else expect({ path, stopAt, at: partial }).toEqual({ path, stopAt, at: whole });
        }
      }
    }
  });

  it("falls back where it cannot be sure (an empty sequence item)", () => {
    const text = "list:\n  -\n  - b\n";
    expect(PositionIndex.build(text, { schema }, jsYaml.load(text))?.locate(["list", 1], false)).toBe("fallback");
    expect(new SourceLocator(text).locate(["list", 1])).toEqual({ line: 3, column: 5 });
  });
});
