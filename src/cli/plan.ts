import { Command } from "commander";
import { renderedOption, writeRendered } from "./rendered.js";
import { action, addSpecOptions, colorsFor, writeJson, type SpecOptions } from "./shared.js";

export function planCommand(): Command {
  const command = new Command("plan")
    .description("show how a workflow will run: groups in order, their tasks and leads, what each waits for, resources")
    .argument("<file>", "workflow file (`-` for standard input)");
  addSpecOptions(command).addOption(renderedOption()).addHelpText(
    "after",
    `
Examples:
  $ troupe plan examples/group_tasks_communication.yaml
  $ troupe plan examples/data_passing.yaml --output json
  $ troupe plan examples/templated_fanout.yaml --set workers=3 --rendered > rendered.yaml`,
  );
  return command.action(
    action(async (file: string, options: SpecOptions & { rendered?: boolean }) => {
      const [{ compileWorkflow }, { formatDiagnostic, formatPlan, summarizeDiagnostics }, { loadSpecFile }] = await Promise.all([
        import("../plan/index.js"),
        import("./format.js"),
        import("./load-spec.js"),
      ]);
      const loaded = await loadSpecFile(file, options);
      if (options.rendered) return writeRendered(loaded, options);
      const stderr = colorsFor(process.stderr);
      for (const d of loaded.diagnostics) process.stderr.write(formatDiagnostic(loaded.displayName, d, stderr) + "\n");
      if (!loaded.spec) {
        if (options.output === "json") writeJson({ file: loaded.displayName, valid: false, diagnostics: loaded.diagnostics });
        process.stderr.write(
          `${loaded.displayName}: ${stderr.red("invalid")} (${summarizeDiagnostics(loaded.diagnostics, loaded.omitted)})\n`,
        );
        return 1;
      }
      const plan = compileWorkflow(loaded.spec);
      if (options.output === "json") writeJson(plan);
      else process.stdout.write(formatPlan(plan, colorsFor(process.stdout)) + "\n");
      return 0;
    }),
  );
}
