/**
 * A log drawn with its colours (ansi-lines.ts), searchable (the lines that match marked, the current one
 * scrolled to; Enter or the buttons go to the next and previous), and downloadable as the text it is.
 */
import { useEffect, useMemo, useRef, useState, type CSSProperties, type RefObject, type UIEvent } from "react";
import { markMatches, matchingLines, styledLines, type Span } from "./ansi-lines";

function styleOf(span: Span): CSSProperties | undefined {
  if (!span.fg && !span.bg && span.decorations.length === 0) return undefined;
  const style: CSSProperties = {};
  if (span.fg) style.color = `rgb(${readable(span.fg)})`;
  if (span.bg) style.backgroundColor = `rgb(${span.bg})`;
  if (span.decorations.includes("bold")) style.fontWeight = "bold";
  if (span.decorations.includes("italic")) style.fontStyle = "italic";
  if (span.decorations.includes("dim")) style.opacity = 0.7;
  if (span.decorations.includes("underline")) style.textDecoration = "underline";
  return style;
}

/**
 * The 16-colour palette's dark half (anser gives 187 and 0) is hard to read on the log's dark background: shown
 * as its bright half, as terminals with dark themes do.
 */
function readable(rgb: string): string {
  return /^(0|187), (0|187), (0|187)$/.test(rgb) ? rgb.replace(/\b187\b/g, "255").replace(/\b0\b/g, "85") : rgb;
}

/** The ANSI codes taken out, for the download's plain copy. */
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

export function LogView({
  text,
  label,
  fileName,
  empty,
  scroller,
  onScroll,
}: {
  text: string;
  label: string;
  fileName: string;
  empty: string;
  scroller: RefObject<HTMLPreElement | null>;
  onScroll: (event: UIEvent<HTMLPreElement>) => void;
}) {
  const [query, setQuery] = useState("");
  const [current, setCurrent] = useState(0);
  const lines = useMemo(() => styledLines(text), [text]);
  const matches = useMemo(() => matchingLines(lines, query), [lines, query]);
  const matched = useMemo(() => new Set(matches), [matches]);
  const currentLine = matches.length > 0 ? matches[Math.min(current, matches.length - 1)] : undefined;
  const lineRefs = useRef(new Map<number, HTMLSpanElement>());

  useEffect(() => {
    if (currentLine !== undefined) lineRefs.current.get(currentLine)?.scrollIntoView({ block: "center" });
  }, [currentLine]);

  const step = (by: number) =>
    matches.length > 0 && setCurrent((c) => (Math.min(c, matches.length - 1) + by + matches.length) % matches.length);
  const download = () => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text.replace(ANSI, "")], { type: "text/plain" }));
    link.download = fileName;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  };

  return (
    <>
      <div className="log-search" role="search">
        <label>
          Search the log
          <input
            type="search"
            value={query}
            onChange={(event) => (setQuery(event.target.value), setCurrent(0))}
            onKeyDown={(event) => event.key === "Enter" && step(event.shiftKey ? -1 : 1)}
          />
        </label>
        <button type="button" onClick={() => step(-1)} disabled={matches.length === 0}>
          Previous
        </button>
        <button type="button" onClick={() => step(1)} disabled={matches.length === 0}>
          Next
        </button>
        <span className="match-count" aria-live="polite">
          {query === ""
            ? ""
            : matches.length === 0
              ? "no lines match"
              : `line ${matches.indexOf(currentLine!) + 1} of ${matches.length} that match`}
        </span>
        <button type="button" onClick={download} disabled={text === ""}>
          Download
        </button>
      </div>
      <pre ref={scroller} className="log" tabIndex={0} aria-label={label} onScroll={onScroll}>
        {text === ""
          ? empty
          : lines.map((line, i) => {
              const isMatch = matched.has(i);
              return (
                <span
                  key={i}
                  className={`log-line${isMatch ? " match" : ""}${i === currentLine ? " current" : ""}`}
                  ref={(element) => void (element ? lineRefs.current.set(i, element) : lineRefs.current.delete(i))}
                >
                  {line.map((span, j) => (
                    <span key={j} style={styleOf(span)}>
                      {isMatch
                        ? markMatches(span.text, query).map((piece, k) => (piece.match ? <mark key={k}>{piece.text}</mark> : piece.text))
                        : span.text}
                    </span>
                  ))}
                  {"\n"}
                </span>
              );
            })}
      </pre>
    </>
  );
}
