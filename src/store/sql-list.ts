/**
 * A list of constants (the model's statuses) as SQL string literals, for an
 * `IN (...)` that follows the model instead of copying it.
 */
export function sqlList(values: readonly string[]): string {
  return values.map((value) => `'${value.replaceAll("'", "''")}'`).join(", ");
}
