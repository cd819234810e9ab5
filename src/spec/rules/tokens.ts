/** Special tokens: where they may appear and what they refer to. */
import { didYouMean } from "../../util/suggest.js";
import type { DiagnosticBag, SpecPath } from "../diagnostics.js";
import { TOKEN_NAMES, tokenizeString } from "../tokens.js";
import { normalizeName } from "../values.js";
import { asList, asText, isMap, type TaskView, type WorkflowView } from "./view.js";

/** The fields tokens are substituted in; anywhere else a `{{...}}` is a mistake. */
function tokenFields(task: TaskView): Array<{ path: SpecPath; value: string }> {
  const out: Array<{ path: SpecPath; value: string }> = [];
  const { raw, path } = task;
  // Checked before the path is built: most strings carry no token at all.
  const add = (value: unknown, ...rest: Array<string | number>) => {
    const text = asText(value);
    if (text !== undefined && text.includes("{{")) out.push({ path: [...path, ...rest], value: text });
  };
  asList(raw.command).forEach((v, i) => add(v, "command", i));
  asList(raw.args).forEach((v, i) => add(v, "args", i));
  if (isMap(raw.environment)) for (const [k, v] of Object.entries(raw.environment)) add(v, "environment", k);
  asList(raw.files).forEach((f, i) => isMap(f) && f.base64 !== true && add(f.contents, "files", i, "contents"));
  asList(raw.outputs).forEach((o, i) => isMap(o) && add(o.url, "outputs", i, "url"));
  if (Array.isArray(raw.checkpoint)) raw.checkpoint.forEach((c, i) => isMap(c) && add(c.url, "checkpoint", i, "url"));
  else if (isMap(raw.checkpoint)) add(raw.checkpoint.url, "checkpoint", "url");
  return out;
}

export function checkTokens(view: WorkflowView, bag: DiagnosticBag): void {
  let names: string[] | undefined;
  const taskNames = () => (names ??= view.tasks.flatMap((t) => (t.name === undefined ? [] : [t.name])));
  for (const task of view.tasks) {
    const fields = tokenFields(task);
    if (fields.length === 0) continue;
    // `{{input:NAME}}` names an input by its task; `WORKFLOW_ID:NAME` inputs by NAME.
    const inputs = asList(task.raw.inputs).map((i) => (isMap(i) ? asText(i.task)?.split(":").pop() : undefined));
    for (const { path, value } of fields) {
      const { parts, unknown } = tokenizeString(value);
      for (const text of unknown) {
        const inner = text.slice(2, -2).trim();
        bag.error("E_UNKNOWN_TOKEN", path, `\`${text}\` is not a known token`, {
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
            bag.error("E_UNKNOWN_HOST_TASK", path, `{{host:${part.task}}} names no task of this workflow`, {
              hint: (budget) => didYouMean(part.task, taskNames(), undefined, budget),
            });
          } else if (target.group !== task.group) {
            bag.error(
              "E_HOST_OUTSIDE_GROUP",
              path,
              `{{host:${part.task}}}: task \`${target.name}\` is not in the group of \`${task.name ?? "?"}\``,
              {
                hint: "only members of the same group run together and can reach each other; put both tasks in one group",
              },
            );
          }
        } else if (part.kind === "input" && "index" in part) {
          if (part.index >= inputs.length) {
            bag.error(
              "E_INPUT_INDEX",
              path,
              `{{input:${part.index}}} is out of range: task \`${task.name ?? "?"}\` has ${inputs.length} input${inputs.length === 1 ? "" : "s"}`,
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
              `{{input:${part.task}}}: \`${part.task}\` is not among the inputs of task \`${task.name ?? "?"}\``,
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
