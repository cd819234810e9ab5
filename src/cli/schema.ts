import { Command } from "commander";
import { action } from "./shared.js";

/** The editor schema, generated from the spec schema (never kept by hand). */
export async function renderJsonSchema(): Promise<string> {
  const { workflowJsonSchema } = await import("../spec/index.js");
  return JSON.stringify(workflowJsonSchema(), null, 2) + "\n";
}

export function schemaCommand(): Command {
  return new Command("schema")
    .description("print the JSON Schema of workflow files (for editor completion and validation)")
    .addHelpText(
      "after",
      `
Examples:
  $ troupe schema > workflow.schema.json
  Then start a workflow file with the yaml-language-server modeline:
  # yaml-language-server: $schema=./workflow.schema.json`,
    )
    .action(
      action(async () => {
        process.stdout.write(await renderJsonSchema());
        return 0;
      }),
    );
}
