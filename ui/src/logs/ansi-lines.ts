/**
 * A log's text with its ANSI colour codes as lines of styled spans (anser reads the codes; a colour set on one
 * line goes on to the next, as in a terminal), and which lines a search finds. Pure: LogView draws what this says.
 */
import Anser from "anser";

export interface Span {
  text: string;
  /** "r, g, b" (anser's form), or null for the default colour. */
  fg: string | null;
  bg: string | null;
  decorations: readonly string[];
}

export type StyledLine = Span[];

export function styledLines(text: string): StyledLine[] {
  const lines: StyledLine[] = [[]];
  for (const entry of Anser.ansiToJson(text, { remove_empty: true, use_classes: false })) {
    const parts = entry.content.split("\n");
    parts.forEach((part, i) => {
      if (i > 0) lines.push([]);
      if (part !== "") lines.at(-1)!.push({ text: part, fg: entry.fg || null, bg: entry.bg || null, decorations: entry.decorations });
    });
  }
  // A log ending in a newline has no line after it.
  if (lines.length > 1 && lines.at(-1)!.length === 0) lines.pop();
  return lines;
}

export const plainText = (line: StyledLine) => line.map((span) => span.text).join("");

/** The lines (their indices) whose text holds `query`, case-insensitively; none for an empty query. */
export function matchingLines(lines: readonly StyledLine[], query: string): number[] {
  if (query === "") return [];
  const wanted = query.toLowerCase();
  const found: number[] = [];
  lines.forEach((line, i) => plainText(line).toLowerCase().includes(wanted) && found.push(i));
  return found;
}

/** A span's text cut where `query` occurs (case-insensitively), the occurrences marked. */
export function markMatches(text: string, query: string): { text: string; match: boolean }[] {
  if (query === "") return [{ text, match: false }];
  const lower = text.toLowerCase();
  const wanted = query.toLowerCase();
  const pieces: { text: string; match: boolean }[] = [];
  let at = 0;
  for (let found = lower.indexOf(wanted); found >= 0; found = lower.indexOf(wanted, found + wanted.length)) {
    if (found > at) pieces.push({ text: text.slice(at, found), match: false });
    pieces.push({ text: text.slice(found, found + wanted.length), match: true });
    at = found + wanted.length;
  }
  if (at < text.length) pieces.push({ text: text.slice(at), match: false });
  return pieces;
}
