/**
 * The editor's completion source: the keys the workflow's JSON Schema allows where the cursor is (completion.ts
 * decides), those already in the mapping left out. The schema is bundled (schema/workflow.schema.json, which
 * test/schema.test.ts keeps equal to `troupe schema`): the page needs no request for it.
 */
import type { CompletionContext, CompletionResult } from "@codemirror/autocomplete";
import schema from "../../../schema/workflow.schema.json";
import { keyContextAt, keysAt, type JsonSchema } from "./completion";

export function schemaKeys(context: CompletionContext): CompletionResult | null {
  const at = keyContextAt(context.state.doc.toString(), context.pos);
  // Offered as a key is typed, or anywhere a key may go when asked (Ctrl-Space).
  if (!at || (at.typed === "" && !context.explicit)) return null;
  const offers = keysAt(schema as JsonSchema, at.path).filter((offer) => !at.present.includes(offer.key));
  if (offers.length === 0) return null;
  return {
    from: at.from,
    options: offers.map((offer) => ({
      label: offer.key,
      type: "property",
      // A mapping or list goes on the lines below; anything else after "key: ".
      apply: offer.block ? `${offer.key}:` : `${offer.key}: `,
      ...(offer.description ? { info: offer.description } : {}),
    })),
    validFor: /^[\w-]*$/,
  };
}
