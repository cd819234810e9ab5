/** A server run's tags: words added and removed after submission (`troupe workflow tag`), kept as a JSON array. */
import type Database from "better-sqlite3";

/** Removes `remove`, then adds `add` (as OSMO: removal first), in one transaction; returns the run's tags after. */
export function setRunTags(db: Database.Database, id: string, add: readonly string[], remove: readonly string[]): string[] {
  const change = db.transaction(() => {
    const row = db.prepare<[string], { tags: string | null }>("SELECT tags FROM runs WHERE id = ?").get(id);
    const before = row?.tags ? (JSON.parse(row.tags) as string[]) : [];
    const after = [...new Set([...before.filter((t) => !remove.includes(t)), ...add])];
    db.prepare<[string, string]>("UPDATE runs SET tags = ? WHERE id = ?").run(JSON.stringify(after), id);
    return after;
  });
  return change.immediate();
}

/** Every tag some run has (with `user`, some run of that user's), sorted. */
export function tagsInUse(db: Database.Database, user?: string): string[] {
  return db
    .prepare<[{ user: string | null }], string>(
      `SELECT DISTINCT json_each.value FROM runs, json_each(runs.tags)
       WHERE runs.tags IS NOT NULL AND (@user IS NULL OR runs.user = @user) ORDER BY 1`,
    )
    .pluck()
    .all({ user: user ?? null });
}
