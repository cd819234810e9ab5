import { Command } from "commander";
import { renderedOption, writeRendered } from "./rendered.js";
import { action, addSpecOptions, colorsFor, writeJson, type SpecOptions } from "./shared.js";

export function validateCommand(): Command {
  const command = new Command("validate")
    .description("check a workflow file and report every problem (exit 0 when valid, 1 when not)")
    .argument("<file>", "workflow file (`-` for standard input)");
  addSpecOptions(command)
    .addOption(renderedOption())
    .addHelpText(
      "after",
      `
Examples:
  $ troupe validate examples/parallel_tasks.yaml
  $ troupe validate examples/templated_fanout.yaml --set workers=8 --output json
  $ troupe validate examples/templated_fanout.yaml --set workers=3 --rendered`,
    );
  return command.action(
    action(async (file: string, options: SpecOptions & { rendered?: boolean }) => {
      // The layers load only when a command runs: `--help` and other commands start fast.
      const [{ compileWorkflow }, { formatDiagnostic, summarizeDiagnostics }, { loadSpecFile }] = await Promise.all([
        import("../plan/index.js"),
        import("./format.js"),
        import("./load-spec.js"),
      ]);
      const loaded = await loadSpecFile(file, options);
      if (options.rendered) return writeRendered(loaded, options);
      // A valid spec must also plan; a failure here is a troupe bug, not the user's.
      if (loaded.spec) compileWorkflow(loaded.spec);
      // The problems listed (not the line counting the rest), for the counts.
      const listed = loaded.omitted ? loaded.diagnostics.slice(0, -1) : loaded.diagnostics;
      if (options.output === "json") {
        writeJson({
          file: loaded.displayName,
          valid: loaded.ok,
          errors: listed.filter((d) => d.severity === "error").length + (loaded.omitted?.errors ?? 0),
          warnings: listed.filter((d) => d.severity === "warning").length + (loaded.omitted?.warnings ?? 0),
          diagnostics: loaded.diagnostics,
        });
      } else {
        const c = colorsFor(process.stdout);
        for (const d of loaded.diagnostics) process.stdout.write(formatDiagnostic(loaded.displayName, d, c) + "\n");
        const verdict = loaded.ok ? colorsFor(process.stderr).green("valid") : colorsFor(process.stderr).red("invalid");
        process.stderr.write(`${loaded.displayName}: ${verdict} (${summarizeDiagnostics(loaded.diagnostics, loaded.omitted)})\n`);
      }
      return loaded.ok ? 0 : 1;
    }),
  );
}
