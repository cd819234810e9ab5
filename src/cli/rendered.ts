/** `--rendered` of `validate` and `plan`: the workflow file as templating made it. */
import { Option } from "commander";
import type { LoadedSpec } from "./load-spec.js";
import { colorsFor, writeJson, type SpecOptions } from "./shared.js";

export function renderedOption(): Option {
  return new Option("--rendered", "print the file after templating (variables applied, tokens as written) instead; problems go to stderr");
}

/**
 * Prints the rendered YAML (stdout) and the problems (stderr), so that
 * `troupe validate --rendered f.yaml > out.yaml` keeps only the YAML; with
 * `--output json`, one object with both. A template that did not render
 * prints no YAML. Exit 0 when the file is valid, 1 when not.
 */
export async function writeRendered(loaded: LoadedSpec, options: SpecOptions): Promise<number> {
  const { formatDiagnostic, summarizeDiagnostics } = await import("./format.js");
  if (options.output === "json") {
    writeJson({ file: loaded.displayName, valid: loaded.ok, rendered: loaded.rendered ?? null, diagnostics: loaded.diagnostics });
    return loaded.ok ? 0 : 1;
  }
  if (loaded.rendered !== undefined) process.stdout.write(loaded.rendered.endsWith("\n") ? loaded.rendered : `${loaded.rendered}\n`);
  const c = colorsFor(process.stderr);
  for (const d of loaded.diagnostics) process.stderr.write(formatDiagnostic(loaded.displayName, d, c) + "\n");
  const verdict = loaded.ok ? c.green("valid") : c.red("invalid");
  process.stderr.write(`${loaded.displayName}: ${verdict} (${summarizeDiagnostics(loaded.diagnostics, loaded.omitted)})\n`);
  return loaded.ok ? 0 : 1;
}
