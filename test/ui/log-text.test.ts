/** What the logs page shows of a stream's output (ui/src/log-text.ts). */
import { describe, expect, it } from "vitest";
import { LogText } from "../../ui/src/log-text.js";

describe("the logs page's text", () => {
  it("shows one task's output as written, colour codes and all, each attempt under its retry", () => {
    const shown = new LogText("train");
    expect(shown.output("train", 0, "epoch 1\n\u001b[31mloss\u001b[0m 0.5")).toBe(
      "── train, retry 0 ──\nepoch 1\n\u001b[31mloss\u001b[0m 0.5",
    );
    expect(shown.output("train", 0, "1\n")).toBe("1\n");
    expect(shown.output("train", 1, "again\n")).toBe("── train, retry 1 ──\nagain\n");
    expect(shown.end()).toBe("");
  });

  it("interleaves every task's whole lines after its name, a split line joined, the unfinished ones at the end", () => {
    const shown = new LogText(undefined);
    // Each line's colours end with it (R): the next line is another task's.
    const R = "\u001b[0m";
    expect(shown.output("a", 0, "one\ntw")).toBe(`a | one${R}\n`);
    expect(shown.output("b", 0, "\u001b[32mhello\n")).toBe(`b | \u001b[32mhello${R}\n`);
    expect(shown.output("a", 0, "o\nthree")).toBe(`a | two${R}\n`);
    expect(shown.output("b", 2, "retried\nlast")).toBe(`b.2 | retried${R}\n`);
    expect(shown.end()).toBe(`a | three${R}\nb.2 | last${R}\n`);
    expect(shown.end()).toBe("");
  });
});
