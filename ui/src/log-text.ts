/**
 * What the logs page shows of the stream's output lines (pure: the page only
 * appends what this returns). One task: its text as written, each attempt
 * under a line naming its retry. Every task: whole lines only, each after its
 * task's name (and retry, past the first) as `troupe workflow logs` prints
 * them; a line's start waits for its end, or for the stream's. Colour codes
 * are kept (LogView draws them); an interleaved line's colours end with it.
 */

/** Ends the colours a line set: interleaved, the next line is another task's. */
const RESET = "\u001b[0m";

export class LogText {
  private lastAttempt = "";
  private readonly partial = new Map<string, string>();

  /** `task`: the one task shown, or undefined for every task's lines interleaved. */
  constructor(private readonly task: string | undefined) {}

  /** The text to append for what an attempt wrote. */
  output(task: string, retry: number, data: string): string {
    const text = data;
    if (this.task !== undefined) {
      const attempt = `${task}\0${retry}`;
      const header = attempt !== this.lastAttempt ? `── ${task}, retry ${retry} ──\n` : "";
      this.lastAttempt = attempt;
      return header + text;
    }
    const key = retry ? `${task}.${retry}` : task;
    const lines = ((this.partial.get(key) ?? "") + text).split("\n");
    this.partial.set(key, lines.pop()!);
    return lines.map((line) => `${key} | ${line}${RESET}\n`).join("");
  }

  /** The text to append when the stream has ended: the unfinished last lines, each after its task's name. */
  end(): string {
    const rest = [...this.partial].filter(([, text]) => text !== "").map(([key, text]) => `${key} | ${text}${RESET}\n`);
    this.partial.clear();
    return rest.join("");
  }
}
