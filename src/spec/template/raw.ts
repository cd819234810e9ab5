/**
 * `{% raw %}...{% endraw %}`: text Jinja must output as written. The template
 * interpreter has no raw blocks, so they are taken out before rendering (each
 * replaced by an expression that outputs a marker, keeping the tags'
 * whitespace control) and put back in the rendered text. OSMO's cookbook
 * builds tokens with them: `{% raw %}{{host:worker_{% endraw %}{{i}}{% raw %}}}{% endraw %}`.
 */

// Characters a file troupe accepts cannot contain (it rejects control characters).
const RAW_OPEN = "\u0003";
const RAW_CLOSE = "\u0004";
const RAW_BLOCK = /\{%(-?)\s*raw\s*(-?)%\}([\s\S]*?)\{%(-?)\s*endraw\s*(-?)%\}/g;
const RAW_MARKER = new RegExp(`${RAW_OPEN}(\\d+)${RAW_CLOSE}`, "g");

export interface RawBlocks {
  /** The template with each raw block replaced by `{{ "marker" }}`. */
  template: string;
  /** The rendered text with the blocks' contents back in place of their markers. */
  restore: (rendered: string) => string;
}

export function takeRawBlocks(template: string): RawBlocks {
  if (!template.includes("raw")) return { template, restore: (rendered) => rendered };
  const contents: string[] = [];
  const replaced = template.replace(
    RAW_BLOCK,
    (block: string, trimBefore: string, trimStart: string, body: string, trimEnd: string, trimAfter: string) => {
      // `{% raw -%}` and `{%- endraw %}` trim the block's own text; the outer dashes become the
      // expression's, which trims the text around it as the tags would have.
      let text = trimStart === "-" ? body.replace(/^\s+/, "") : body;
      if (trimEnd === "-") text = text.replace(/\s+$/, "");
      const index = contents.push(text) - 1;
      // The expression takes the block's lines and the width of its last one (spaces inside
      // it), so that what follows keeps its line and column for error positions.
      const head = `{{${trimBefore} "${RAW_OPEN}${index}${RAW_CLOSE}" `;
      const tail = `${trimAfter}}}`;
      const lines = block.split("\n");
      const lastWidth = (lines[lines.length - 1] as string).length;
      const used = lines.length === 1 ? head.length + tail.length : tail.length;
      return `${head}${"\n".repeat(lines.length - 1)}${" ".repeat(Math.max(0, lastWidth - used))}${tail}`;
    },
  );
  if (contents.length === 0) return { template, restore: (rendered) => rendered };
  return {
    template: replaced,
    restore: (rendered) => rendered.replace(RAW_MARKER, (_m, index: string) => contents[Number(index)] ?? ""),
  };
}
