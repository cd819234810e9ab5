import { closest, distance } from "fastest-levenshtein";

/**
 * "Did you mean" for a misspelt name: the closest candidate, when it is close
 * enough to be a plausible typo (at most a third of the word differs).
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const list = [...candidates];
  if (list.length === 0) return undefined;
  const lower = word.toLowerCase();
  const exactCase = list.find((c) => c.toLowerCase() === lower);
  if (exactCase !== undefined) return exactCase;
  const best = closest(word, list);
  const limit = Math.max(1, Math.ceil(Math.max(word.length, best.length) / 3));
  return distance(word, best) <= limit ? best : undefined;
}

export function didYouMean(
  word: string,
  candidates: Iterable<string>,
  render: (s: string) => string = (s) => `\`${s}\``,
): string | undefined {
  const hit = suggest(word, candidates);
  return hit === undefined ? undefined : `did you mean ${render(hit)}?`;
}
