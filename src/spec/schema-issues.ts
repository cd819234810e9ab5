/**
 * Turns the schema's issues into troupe diagnostics: our stable codes, a
 * sentence a person can act on and, for unknown fields, the field they meant.
 */
import type * as z from "zod";
import { didYouMean } from "../util/suggest.js";
import type { DiagnosticBag, SpecPath } from "./diagnostics.js";
import { WorkflowFileSchema } from "./schema.js";

type AnySchema = z.core.$ZodType;

/** The schema that describes the value at `path`, if there is one. */
function schemaAt(path: SpecPath): AnySchema | undefined {
  let current: AnySchema | undefined = WorkflowFileSchema;
  for (const segment of path) {
    current = unwrap(current, segment);
    if (current === undefined) return undefined;
    const def = current._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === "object" && typeof segment === "string") {
      current = (def.shape as Record<string, AnySchema>)[segment];
    } else if (def.type === "array" && typeof segment === "number") {
      current = def.element as AnySchema;
    } else if (def.type === "record") {
      current = def.valueType as AnySchema;
    } else {
      return undefined;
    }
  }
  return unwrap(current, undefined);
}

/**
 * Look through optional/default/pipe wrappers. A union (checkpoint: an object
 * or a list of them) is resolved by what comes next: an index picks the list.
 */
function unwrap(schema: AnySchema | undefined, next: string | number | undefined): AnySchema | undefined {
  let current = schema;
  for (let i = 0; i < 10 && current !== undefined; i++) {
    const def = current._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === "optional" || def.type === "default" || def.type === "nullable") current = def.innerType as AnySchema;
    else if (def.type === "pipe") current = def.in as AnySchema;
    else if (def.type === "union") {
      const options = def.options as AnySchema[];
      const wanted = typeof next === "number" ? "array" : "object";
      current = options.find((o) => (o._zod.def as { type: string }).type === wanted);
    } else return current;
  }
  return current;
}

function knownKeys(path: SpecPath): string[] {
  const schema = schemaAt(path);
  if (!schema) return [];
  const def = schema._zod.def as unknown as { type: string; shape?: Record<string, unknown> };
  return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
  return `${typeof value} ${String(value)}`;
}

function valueAt(root: unknown, path: SpecPath): unknown {
  let current = root;
  for (const segment of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

function expectedOf(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") {
    const expected = String(issue.expected);
    return expected === "object" ? "a mapping" : expected === "array" ? "a list" : `a ${expected}`;
  }
  return "a different value";
}

/** An entry of a task's `inputs` or `outputs`. */
const isDataEntry = (path: SpecPath) =>
  typeof path[path.length - 1] === "number" && /^(inputs|outputs)$/.test(String(path[path.length - 2]));
const hasDataset = (value: unknown) => typeof value === "object" && value !== null && "dataset" in value;
/** OSMO's datasets live in its dataset service; troupe moves data by URL (and between tasks by `task:`). */
export const DATASET_HINT =
  "OSMO's datasets need its dataset service, which troupe does not have: name where the data is with `url: s3://BUCKET/PATH` instead";

const FIELD_LABEL = (path: SpecPath) => {
  const last = path[path.length - 1];
  return typeof last === "string" ? `\`${last}\`` : "this entry";
};

export function reportSchemaIssues(issues: readonly z.core.$ZodIssue[], raw: unknown, bag: DiagnosticBag): void {
  for (const issue of issues) {
    const path = issue.path as Array<string | number>;
    // An output of OSMO's `dataset:` lacks its `url` because of it: said once, at the dataset (below).
    const entry = path.slice(0, -1);
    if (path[path.length - 1] === "url" && isDataEntry(entry) && hasDataset(valueAt(raw, entry)) && valueAt(raw, path) === undefined)
      continue;
    switch (issue.code) {
      case "unrecognized_keys": {
        const candidates = knownKeys(path);
        for (const key of issue.keys) {
          const atRoot = path.length === 0;
          const where = atRoot ? "at the top level" : `in ${describePlace(path)}`;
          const allowed = atRoot ? "allowed: workflow, default-values, version" : undefined;
          const dataset = key === "dataset" && isDataEntry(path);
          bag.error(atRoot ? "E_UNKNOWN_TOP_LEVEL_KEY" : "E_UNKNOWN_FIELD", [...path, key], `unknown field \`${key}\` ${where}`, {
            hint: dataset ? DATASET_HINT : (budget) => didYouMean(key, candidates, undefined, budget) ?? allowed,
            atKey: true,
          });
        }
        break;
      }
      case "invalid_type": {
        const actual = valueAt(raw, path);
        if (actual === undefined) {
          bag.error("E_MISSING_FIELD", path, `required field ${FIELD_LABEL(path)} is missing`);
        } else {
          bag.error("E_WRONG_TYPE", path, `${FIELD_LABEL(path)} must be ${expectedOf(issue)}, not ${describe(actual)}`);
        }
        break;
      }
      case "invalid_union": {
        const actual = valueAt(raw, path);
        const isVersion = path.length === 1 && path[0] === "version";
        if (isVersion) bag.error("E_VERSION", path, `version ${describe(actual)} is not supported; only version 2 is`);
        else if (actual === undefined) bag.error("E_MISSING_FIELD", path, `required field ${FIELD_LABEL(path)} is missing`);
        else bag.error("E_WRONG_TYPE", path, `${FIELD_LABEL(path)} must be a string, number or boolean, not ${describe(actual)}`);
        break;
      }
      case "too_small": {
        const last = path[path.length - 1];
        if (last === "command")
          bag.error("E_EMPTY_COMMAND", path, "`command` must not be empty", { hint: 'for example command: ["sh", "-c"]' });
        else if (last === "tasks" && path.length === 4)
          bag.error("E_EMPTY_GROUP", path, `group ${describePlace(path.slice(0, 3))} has no tasks`);
        else bag.error("E_TOO_SMALL", path, `${FIELD_LABEL(path)} must not be empty`);
        break;
      }
      case "invalid_key": {
        // A record key that failed its own rule (labels): report the rule, at the key.
        const inner = issue.issues[0];
        const params = inner?.code === "custom" ? (inner.params as { code?: string; hint?: string } | undefined) : undefined;
        bag.error(params?.code ?? "E_INVALID_KEY", path, inner?.message ?? issue.message, { atKey: true, hint: params?.hint });
        break;
      }
      case "custom": {
        const params = issue.params as { code?: string; hint?: string } | undefined;
        bag.error(params?.code ?? "E_INVALID", path, issue.message, params?.hint === undefined ? {} : { hint: params.hint });
        break;
      }
      case "invalid_value": {
        if (path.length === 1 && path[0] === "version") {
          bag.error("E_VERSION", path, `version ${describe(valueAt(raw, path))} is not supported; only version 2 is`);
        } else {
          bag.error("E_INVALID", path, issue.message);
        }
        break;
      }
      default:
        bag.error("E_INVALID", path, issue.message);
    }
  }
}

function describePlace(path: SpecPath): string {
  const last = path[path.length - 1];
  if (typeof last === "number") return `${String(path[path.length - 2] ?? "list")}[${last}]`;
  return `\`${String(last)}\``;
}
