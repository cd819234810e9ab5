/** The log's colours and search (ui/src/logs/ansi-lines.ts). */
import { describe, expect, it } from "vitest";
import { markMatches, matchingLines, plainText, styledLines } from "../../ui/src/logs/ansi-lines.js";

describe("styledLines", () => {
  it("reads colours and bold, a colour going on to the next line until reset, as a terminal shows them", () => {
    const lines = styledLines("a\u001b[31mred\nstill\u001b[0m x\n\u001b[1;32mbold\n");
    expect(lines.map(plainText)).toEqual(["ared", "still x", "bold"]);
    expect(lines[0]).toEqual([
      { text: "a", fg: null, bg: null, decorations: [] },
      { text: "red", fg: "187, 0, 0", bg: null, decorations: [] },
    ]);
    expect(lines[1]![0]).toMatchObject({ text: "still", fg: "187, 0, 0" });
    expect(lines[1]![1]).toMatchObject({ text: " x", fg: null });
    expect(lines[2]![0]).toMatchObject({ text: "bold", fg: "0, 187, 0", decorations: ["bold"] });
  });
  it("keeps empty lines", () => {
    expect(styledLines("one\n\nthree").map(plainText)).toEqual(["one", "", "three"]);
  });
});

describe("search", () => {
  const lines = styledLines("Loss 0.5\n\u001b[31mloss\u001b[0m 0.4\naccuracy\n");
  it("finds the lines that hold the words, whatever their case or colours", () => {
    expect(matchingLines(lines, "LOSS")).toEqual([0, 1]);
    expect(matchingLines(lines, "")).toEqual([]);
    expect(matchingLines(lines, "nothing")).toEqual([]);
  });
  it("marks each occurrence in a span", () => {
    expect(markMatches("a loss, a LOSS", "loss")).toEqual([
      { text: "a ", match: false },
      { text: "loss", match: true },
      { text: ", a ", match: false },
      { text: "LOSS", match: true },
    ]);
  });
});
