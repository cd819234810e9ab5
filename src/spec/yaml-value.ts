/**
 * The plain value of a checked document (yaml-careful.ts), built in one pass.
 * The package's own `toJS` looks each alias up by a walk over every anchor and
 * alias before it: 100,000 tasks merging one anchor took minutes. Here an
 * alias is the value of the last anchor of its name before it, kept as the
 * walk goes (aliases share that value, as they do in js-yaml and the package).
 * Meaning as the package's: merge keys take the entries their sources have
 * and the mapping does not (the first source first), explicit entries replace
 * merged ones, a key is its scalar's text (`null` as "null").
 */
import { isAlias, isMap, isScalar, isSeq, type Document } from "yaml";

export function documentValue(doc: Document.Parsed): unknown {
  const anchors = new Map<string, unknown>();
  const set = (target: Record<string, unknown>, key: string, value: unknown) => {
    if (key === "__proto__") Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
    else target[key] = value;
  };
  const convert = (node: unknown): unknown => {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return anchors.get(node.source);
    const anchor = (node as { anchor?: string }).anchor;
    if (isSeq(node)) {
      const list: unknown[] = [];
      for (const item of node.items) list.push(convert(item));
      if (anchor) anchors.set(anchor, list);
      return list;
    }
    if (isMap(node)) {
      const map: Record<string, unknown> = {};
      for (const pair of node.items) {
        if (isScalar(pair.key) && typeof pair.key.value === "symbol") {
          // A list of sources, written or named by an alias, or one source.
          const merged = convert(pair.value);
          for (const entries of (Array.isArray(merged) ? merged : [merged]) as Array<Record<string, unknown>>) {
            for (const key of Object.keys(entries)) if (!Object.prototype.hasOwnProperty.call(map, key)) set(map, key, entries[key]);
          }
        } else {
          set(map, String(convert(pair.key)), convert(pair.value));
        }
      }
      if (anchor) anchors.set(anchor, map);
      return map;
    }
    const value = isScalar(node) ? node.value : null;
    if (anchor) anchors.set(anchor, value);
    return value;
  };
  return convert(doc.contents);
}
