/** Special tokens: where they may appear and what they refer to. */
import { didYouMean, type SuggestionBudget } from "../../util/suggest.js";
import type { DiagnosticBag, SpecPath } from "../diagnostics.js";
import { readLocalText } from "../inline.js";
import { TOKEN_NAMES, tokenizeString } from "../tokens.js";
import { normalizeName } from "../values.js";
import { asList, asText, isMap, type TaskView, type WorkflowView } from "./view.js";

interface TokenField {
  path: SpecPath;
  value: string;
  /** The `localpath` the text was read from; tokens are substituted in such files too, as OSMO does. */
  localpath?: string;
}

/** The fields tokens are substituted in; anywhere else a `{{...}}` is a mistake. */
function tokenFields(task: TaskView, baseDir: string | undefined, bag: DiagnosticBag): TokenField[] {
  const out: TokenField[] = [];
  const { raw, path } = task;
  // Checked before the path is built: most strings carry no token at all.
  const add = (value: unknown, ...rest: Array<string | number>) => {
    const text = asText(value);
    if (text !== undefined && text.includes("{{")) out.push({ path: [...path, ...rest], value: text });
  };
  asList(raw.command).forEach((v, i) => add(v, "command", i));
  asList(raw.args).forEach((v, i) => add(v, "args", i));
  if (isMap(raw.environment)) for (const [k, v] of Object.entries(raw.environment)) add(v, "environment", k);
  asList(raw.files).forEach((f, i) => {
    if (!isMap(f)) return;
    if (f.base64 !== true) add(f.contents, "files", i, "contents");
    const localpath = asText(f.localpath);
    if (localpath === undefined || baseDir === undefined) return;
    const text = readLocalText(baseDir, localpath);
    if (!text?.includes("{{")) return;
    const field = { path: [...path, "files", i, "localpath"], value: text, localpath };
    const { parts, unknown } = tokenizeString(text);
    if (unknown.length === 0) out.push(field);
    else if (parts.some((p) => typeof p !== "string"))
      // inlineLocalFiles sends such a file as it is: say so rather than leave its tokens silently.
      bag.warning(
        "W_LOCALPATH_TOKENS_NOT_SUBSTITUTED",
        field.path,
        `\`${unknown[0]}\`${placeIn(field, unknown[0] as string)} is no token, so \`${localpath}\` is used as written: its tokens are not substituted`,
        { hint: 'pass what the tokens give through `environment:` instead (e.g. PEER: "{{host:server}}")' },
      );
  });
  asList(raw.outputs).forEach((o, i) => isMap(o) && add(o.url, "outputs", i, "url"));
  const checkpoints = Array.isArray(raw.checkpoint) ? raw.checkpoint : [raw.checkpoint];
  checkpoints.forEach((c, i) => {
    if (!isMap(c)) return;
    const at = Array.isArray(raw.checkpoint) ? ["checkpoint", i] : ["checkpoint"];
    for (const field of ["url", "path"]) add(c[field], ...at, field);
  });
  return out;
}

function groupLabel(task: TaskView): string {
  return task.group.implicit ? "a group of its own" : `group \`${task.group.name ?? "?"}\``;
}

/**
 * Why `{{host:NAME}}` reaches nothing: the member meant (by spelling), or what
 * NAME is instead (a group, a resource), and who can be reached. OSMO leaves
 * such a token as written, to fail at run time; troupe refuses it here.
 */
function unknownHostHint(name: string, task: TaskView, view: WorkflowView, taskNames: () => string[], budget: SuggestionBudget): string {
  const members = task.group.tasks.flatMap((t) => (t.name === undefined || t === task ? [] : [t.name]));
  const meant = didYouMean(name, members, undefined, budget) ?? didYouMean(name, taskNames(), undefined, budget);
  if (meant !== undefined) return meant;
  const wanted = normalizeName(name);
  const group = view.groups.find((g) => !g.implicit && g.name !== undefined && normalizeName(g.name) === wanted);
  const resources = isMap(view.raw.resources) ? Object.keys(view.raw.resources) : [];
  const what = group
    ? `\`${name}\` is a group; {{host:...}} names a task`
    : resources.some((r) => normalizeName(r) === wanted)
      ? `\`${name}\` is a resource; {{host:...}} names a task`
      : `{{host:...}} names a task of the same group`;
  return members.length > 0
    ? `${what}: here ${members.map((m) => `\`${m}\``).join(", ")}`
    : `${what}, and \`${task.name ?? "?"}\` is alone in its group`;
}

/** Where in a localpath file a token is: ` (in \`run.sh\`, line 3)`; nothing for a field of the spec. */
function placeIn(field: TokenField, token: string): string {
  if (field.localpath === undefined) return "";
  const index = field.value.indexOf(token);
  const line = index < 0 ? undefined : field.value.slice(0, index).split("\n").length;
  return ` (in \`${field.localpath}\`${line === undefined ? "" : `, line ${line}`})`;
}

export function checkTokens(view: WorkflowView, bag: DiagnosticBag, baseDir?: string): void {
  let names: string[] | undefined;
  const taskNames = () => (names ??= view.tasks.flatMap((t) => (t.name === undefined ? [] : [t.name])));
  for (const task of view.tasks) {
    const fields = tokenFields(task, baseDir, bag);
    if (fields.length === 0) continue;
    // `{{input:NAME}}` names an input by its task; `WORKFLOW_ID:NAME` inputs by NAME.
    const inputs = asList(task.raw.inputs).map((i) => (isMap(i) ? asText(i.task)?.split(":").pop() : undefined));
    for (const field of fields) {
      const { path, value } = field;
      const { parts, unknown } = tokenizeString(value);
      for (const text of unknown) {
        const inner = text.slice(2, -2).trim();
        bag.error("E_UNKNOWN_TOKEN", path, `\`${text}\` is not a known token${placeIn(field, text)}`, {
          hint:
            didYouMean(
              inner.split(":")[0] ?? inner,
              ["output", "workflow_id", "input", "host"],
              (s) => `{{${s}${TOKEN_NAMES.includes(`${s}:`) ? ":…" : ""}}}`,
            ) ?? "tokens are {{output}}, {{input:N}}, {{input:TASK}}, {{host:TASK}} and {{workflow_id}}, written without inner spaces",
        });
      }
      for (const part of parts) {
        if (typeof part === "string") continue;
        if (part.kind === "host") {
          const target = view.byName.get(normalizeName(part.task));
          if (!target) {
            bag.error(
              "E_UNKNOWN_HOST_TASK",
              path,
              `{{host:${part.task}}} names no task of this workflow${placeIn(field, `{{host:${part.task}}}`)}`,
              {
                hint: (budget) => unknownHostHint(part.task, task, view, taskNames, budget),
              },
            );
          } else if (target.group !== task.group) {
            bag.error(
              "E_HOST_OUTSIDE_GROUP",
              path,
              `{{host:${part.task}}}: task \`${target.name}\` is in ${groupLabel(target)}, not in ${groupLabel(task)} with \`${task.name ?? "?"}\`${placeIn(field, `{{host:${part.task}}}`)}`,
              {
                hint: "{{host:...}} reaches only members of the same group (they run together); put both tasks in one group",
              },
            );
          }
        } else if (part.kind === "input" && "index" in part) {
          if (part.index >= inputs.length) {
            bag.error(
              "E_INPUT_INDEX",
              path,
              `{{input:${part.index}}} is out of range: task \`${task.name ?? "?"}\` has ${inputs.length} input${inputs.length === 1 ? "" : "s"}${placeIn(field, `{{input:${part.index}}}`)}`,
              {
                hint: inputs.length > 0 ? `use {{input:0}}…{{input:${inputs.length - 1}}}` : "add an `inputs:` entry",
              },
            );
          }
        } else if (part.kind === "input") {
          const named = inputs.filter((i): i is string => i !== undefined);
          if (!named.some((n) => normalizeName(n) === normalizeName(part.task))) {
            bag.error(
              "E_INPUT_NAME",
              path,
              `{{input:${part.task}}}: \`${part.task}\` is not among the inputs of task \`${task.name ?? "?"}\`${placeIn(field, `{{input:${part.task}}}`)}`,
              {
                hint: didYouMean(part.task, named) ?? (named.length ? `its inputs: ${named.join(", ")}` : "add it under `inputs:`"),
              },
            );
          }
        }
      }
    }
  }
  checkStrayTokens(view, bag);
}

const TOKEN_BEARING = new Set(["command", "args", "environment", "files", "outputs", "checkpoint"]);

/** Any `{{...}}` outside the token-bearing fields survived templating by mistake. */
function checkStrayTokens(view: WorkflowView, bag: DiagnosticBag): void {
  // One path array, pushed and popped, copied only for a report: this walk
  // touches every value of the file.
  const path: Array<string | number> = [];
  const walk = (value: unknown, inTask: boolean): void => {
    if (typeof value === "string") {
      if (value.includes("{{")) {
        const shown = value.length > 60 ? value.slice(0, 60) + "…" : value;
        bag.error("E_TOKEN_NOT_ALLOWED", [...path], `\`${shown}\` contains \`{{\`, which templating left behind`, {
          hint: "tokens are substituted only in command, args, environment, files, outputs and checkpoint; template variables need a definition",
        });
      }
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        walk(value[i], inTask);
        path.pop();
      }
    } else if (isMap(value)) {
      for (const k in value) {
        if (inTask && TOKEN_BEARING.has(k)) continue;
        path.push(k);
        walk(value[k], inTask);
        path.pop();
      }
    }
  };
  const walkAt = (base: SpecPath, value: unknown, inTask: boolean) => {
    path.length = 0;
    path.push(...base);
    walk(value, inTask);
  };
  for (const [k, v] of Object.entries(view.raw)) {
    if (k === "tasks" || k === "groups") continue;
    walkAt(["workflow", k], v, false);
  }
  for (const group of view.groups) {
    if (!group.implicit) for (const [k, v] of Object.entries(group.raw)) if (k !== "tasks") walkAt([...group.path, k], v, false);
    for (const task of group.tasks) walkAt(task.path, task.raw, true);
  }
}
