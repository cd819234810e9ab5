/** The submit page's deciding part (ui/src/submit/diagnostics.ts): server diagnostics to editor marks, variables. */
import { describe, expect, it } from "vitest";
import { marksOf, parseVariables, type ServerDiagnostic } from "../../ui/src/submit/diagnostics.js";

const text = "workflow:\n  name: x\n  tasks:\n  - imagee: y\n";
const d = (line: number, column: number): ServerDiagnostic => ({
  severity: "error",
  code: "E_X",
  path: "workflow.tasks[0]",
  line,
  column,
  message: "wrong",
});

describe("marksOf", () => {
  it("marks from the diagnostic's column to the end of its line, naming its path and code", () => {
    expect(marksOf(text, [d(4, 5)])).toEqual([{ from: 33, to: 42, severity: "error", message: "workflow.tasks[0]: wrong [E_X]", line: 4 }]);
    expect(text.slice(33, 42)).toBe("imagee: y");
  });
  it("puts a problem with no place on the first line, and one past the end on the last", () => {
    expect(marksOf(text, [d(0, 0)])[0]).toMatchObject({ from: 0, to: 9, line: 1 });
    expect(marksOf(text, [d(99, 1)])[0]).toMatchObject({ from: text.length, to: text.length, line: 5 });
  });
  it("keeps a column past the line's end on the line", () => {
    expect(marksOf(text, [d(2, 80)])[0]).toMatchObject({ from: 19, to: 19 });
  });
});

describe("parseVariables", () => {
  it("reads NAME=VALUE lines, skipping blank and # lines, and names each line that is not one", () => {
    expect(parseVariables("a=1\n\n# note\nb = 2\nc=x=y\n")).toEqual({
      set: { a: "1", c: "x=y" },
      problems: ['variables, line 4: "b = 2" is not NAME=VALUE'],
    });
  });
});
