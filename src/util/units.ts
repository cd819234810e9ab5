/** Quantities as people read them. */

const BINARY_UNITS = [
  ["Ti", 1024 ** 4],
  ["Gi", 1024 ** 3],
  ["Mi", 1024 ** 2],
  ["Ki", 1024],
] as const;

/**
 * A size in the largest binary unit it reaches, as a person reads it: exact where two decimals say
 * it (`1.25Gi`, `512Mi`), otherwise to one decimal (`23.5Gi`, not `24105.2Mi`).
 */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of BINARY_UNITS) {
    if (bytes < size) continue;
    const hundredths = (bytes * 100) / size;
    const value = Number.isInteger(hundredths) ? hundredths / 100 : Math.round((bytes / size) * 10) / 10;
    // 1023.96Mi rounds to 1024Mi: that is 1Gi, the unit above.
    return value >= 1024 && unit !== "Ti" ? formatBytes(size * 1024) : `${value}${unit}`;
  }
  return `${bytes}B`;
}
