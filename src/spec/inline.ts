/**
 * `localpath` files are read where the spec file is (the client, at submit
 * time) and carried inside the spec from then on, as base64 contents.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { TaskSpec, WorkflowSpec } from "./schema.js";

export function inlineLocalFiles(spec: WorkflowSpec, baseDir: string): WorkflowSpec {
  const inlineTask = (task: TaskSpec): TaskSpec => {
    if (!task.files?.some((f) => f.localpath !== undefined)) return task;
    return {
      ...task,
      files: task.files.map((file) =>
        file.localpath === undefined
          ? file
          : { path: file.path, contents: readFileSync(resolve(baseDir, file.localpath)).toString("base64"), base64: true },
      ),
    };
  };
  const workflow = spec.workflow;
  return {
    ...spec,
    workflow: {
      ...workflow,
      tasks: workflow.tasks?.map(inlineTask),
      groups: workflow.groups?.map((g) => ({ ...g, tasks: g.tasks.map(inlineTask) })),
    },
  };
}
