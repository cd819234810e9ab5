import { closest, distance } from "fastest-levenshtein";

/**
 * How many candidate comparisons suggestions may still make. One is shared by
 * every suggestion of a validation, so that a file with thousands of
 * misspelt names against thousands of candidates stays linear: the first
 * problems reported get their suggestions, the rest none.
 */
export class SuggestionBudget {
  constructor(public remaining = 500_000) {}

  /** Takes `cost` comparisons if they are left. */
  take(cost: number): boolean {
    if (cost > this.remaining) return false;
    this.remaining -= cost;
    return true;
  }
}

/**
 * "Did you mean" for a misspelt name: the closest candidate, when it is close
 * enough to be a plausible typo (at most a third of the word differs).
 */
export function suggest(word: string, candidates: Iterable<string>, budget?: SuggestionBudget): string | undefined {
  const list = Array.isArray(candidates) ? (candidates as string[]) : [...candidates];
  if (list.length === 0) return undefined;
  if (budget && !budget.take(list.length)) return undefined;
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
  budget?: SuggestionBudget,
): string | undefined {
  const hit = suggest(word, candidates, budget);
  return hit === undefined ? undefined : `did you mean ${render(hit)}?`;
}
