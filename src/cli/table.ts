/** Aligned plain-text tables (a header row, then rows), as `workflow list` and `workflow query --verbose` print them. */
import type { colorsFor } from "./shared.js";

type Colors = ReturnType<typeof colorsFor>;

/** Columns padded to their widest cell, two spaces apart, the header bold; `paint` colours a cell after padding. */
export function alignedTable(rows: string[][], c: Colors, paint?: (column: number, cell: string) => string): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((row, r) =>
      row
        .map((cell, i) => {
          const pad = " ".repeat((widths[i] ?? 0) - cell.length);
          if (r === 0) return c.bold(cell + pad);
          return (paint ? paint(i, cell) : cell) + pad;
        })
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** "1 task", "3 tasks". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
