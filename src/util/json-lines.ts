/**
 * A reader of JSON lines arriving in chunks that may split a line: each
 * complete line is parsed and handed on; blank lines and lines that are not
 * JSON are skipped (not ours to interpret).
 */
export function jsonLines(onMessage: (message: Record<string, unknown>) => void): (chunk: Buffer | string) => void {
  let buffer = "";
  return (chunk) => {
    buffer += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        // Said in the file's header: not ours to interpret.
        continue;
      }
      if (message !== null && typeof message === "object") onMessage(message as Record<string, unknown>);
    }
  };
}
