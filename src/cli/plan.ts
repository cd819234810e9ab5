import { Command } from "commander";
import type { CompiledWorkflow } from "../plan/index.js";
import { placeGroups, placementErrors, type PlacedGroup } from "./group-placement.js";
import { renderedOption, writeRendered } from "./rendered.js";
import { addRuntimeFlags, runtimeFlagsGiven } from "./runtime-flags.js";
import type { RuntimeFlags } from "./choose-runtime.js";
import { action, addSpecOptions, colorsFor, writeJson, type SpecOptions } from "./shared.js";

/** `pretty` and `json` as every command; `dot` and `mermaid` draw the group graph (plan-graph.ts). */
const PLAN_OUTPUTS = ["pretty", "json", "dot", "mermaid"] as const;
type PlanOptions = Omit<SpecOptions, "output"> & { output: (typeof PLAN_OUTPUTS)[number] } & RuntimeFlags;

export function planCommand(): Command {
  const command = addRuntimeFlags(
    new Command("plan")
      .description("show how a workflow will run: groups in order, their tasks and leads, what each waits for, resources")
      .argument("<file>", "workflow file (`-` for standard input)"),
  );
  addSpecOptions(command, PLAN_OUTPUTS)
    .addOption(renderedOption())
    .addHelpText(
      "after",
      `
Output: pretty (the default), json (the compiled workflow), dot (Graphviz) or mermaid: the group graph,
each group a node listing its tasks (the lead marked ★), each input an edge labelled with the tasks it links.

Tasks' credentials: (names, payload keys, variable names, directories) are checked against this home's
credentials, as troupe run will give them; a missing one is an error (exit 2).

With a runtime (--runtime and its flags, as troupe run takes them), the plan is checked against that
pool too: with --runtime slurm, each group's job as Slurm will be asked for it (how many tasks, on
distinct nodes with --spread nodes, the default, or packed with --spread pack), and a group that
could never be placed on the partition's nodes is an error (exit 2), before anything is submitted.

Examples:
  $ troupe plan examples/group_tasks_communication.yaml
  $ troupe plan examples/group_tasks_communication.yaml --runtime slurm --spread nodes   # on a login node
  $ troupe plan examples/data_passing.yaml --output json
  $ troupe plan examples/data_passing.yaml --output dot | dot -Tsvg > plan.svg
  $ troupe plan examples/data_passing.yaml --output mermaid > plan.mmd
  $ troupe plan examples/templated_fanout.yaml --set workers=3 --rendered > rendered.yaml`,
    );
  return command.action(
    action(async (file: string, options: PlanOptions & { rendered?: boolean }) => {
      const [{ compileWorkflow }, { formatDiagnostic, formatPlan, summarizeDiagnostics }, { loadSpecFile }] = await Promise.all([
        import("../plan/index.js"),
        import("./format.js"),
        import("./load-spec.js"),
      ]);
      const specOptions = { ...options, output: options.output === "json" ? ("json" as const) : ("pretty" as const) };
      const loaded = await loadSpecFile(file, specOptions);
      if (options.rendered) return writeRendered(loaded, specOptions);
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
      // The credentials tasks name are this home's (as `troupe run` will give them): a missing one or key is told now.
      if (plan.groups.some((g) => g.tasks.some((t) => Object.keys(t.credentials).length > 0))) await checkCredentials(plan);
      const placed = runtimeFlagsGiven(options) ? await placeOnPool(plan, options) : undefined;
      if (placed) {
        const errors = placementErrors(loaded.displayName, placed);
        for (const line of errors) process.stderr.write(`${line}\n`);
        if (options.output === "json") writeJson({ ...plan, placement: placed });
        else if (options.output === "pretty") {
          process.stdout.write(formatPlan(plan, colorsFor(process.stdout)) + "\n");
          for (const p of placed) process.stdout.write(`placement: ${p.group}: ${p.how}${p.refusal ? ` (never: ${p.refusal})` : ""}\n`);
        }
        if (errors.length > 0) return 2;
        if (options.output === "json" || options.output === "pretty") return 0;
      }
      if (options.output === "json") writeJson(plan);
      else if (options.output === "dot") process.stdout.write((await import("./plan-graph.js")).planToDot(plan) + "\n");
      else if (options.output === "mermaid") process.stdout.write((await import("./plan-graph.js")).planToMermaid(plan) + "\n");
      else process.stdout.write(formatPlan(plan, colorsFor(process.stdout)) + "\n");
      return 0;
    }),
  );
}

/** How the pool the runtime flags name would place each group; undefined where the runtime does not say (this machine's). */
async function placeOnPool(plan: CompiledWorkflow, flags: RuntimeFlags): Promise<PlacedGroup[] | undefined> {
  const choice = (await import("./choose-runtime.js")).askRuntime(flags);
  try {
    await choice.checkAsked();
    const placer = await choice.knownPlacement();
    return placer ? placeGroups(plan, placer) : undefined;
  } finally {
    choice.drop();
  }
}

async function checkCredentials(plan: CompiledWorkflow): Promise<void> {
  const [{ openStore }, { checkHomeCredentialUse }] = await Promise.all([import("./home.js"), import("../drive/index.js")]);
  const { store } = openStore();
  try {
    checkHomeCredentialUse(store, plan);
  } finally {
    store.close();
  }
}
