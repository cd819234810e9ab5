/** `troupe restart RUN`: a failed local run again, running only what did not complete. */
import { Command } from "commander";
import { NotFoundError, TroupeError } from "../errors/index.js";
import type { RunOptions } from "./run-action.js";
import { runCommand } from "./run.js";
import { action, outputOption } from "./shared.js";
import { isFailure } from "../model/index.js";

/** `troupe run`'s options a restart does not take: the spec and its variables are the run's own. */
const FROM_THE_RECORD = new Set(["--set", "--set-string", "--output"]);

export function restartCommand(): Command {
  const command = new Command("restart")
    .description(
      "run a failed run's workflow again (the spec, variables and --set-env it was run with): only the groups that did not complete, reusing the outputs of those that did",
    )
    .argument("<run>", "run id, or a unique prefix of one");
  // Where and how to run it: whatever `troupe run` takes (runtime, pool capacity, retries, ...).
  for (const option of runCommand().options) if (!FROM_THE_RECORD.has(option.long ?? "")) command.addOption(option);
  return command
    .addOption(outputOption())
    .addHelpText(
      "after",
      `
Exit codes as troupe run: 0 completed, 1 failed, 2 invalid or usage, 130 canceled.

Examples:
  $ troupe restart ddp-train-3
  $ troupe restart ddp-train-3 --runtime host --max-retries 2`,
    )
    .action(
      action(async (id: string, options: Omit<RunOptions, "set" | "setString">) => {
        if (Object.keys(options.setEnv ?? {}).length > 0) (await import("./run-action.js")).checkSetEnv(options.setEnv);
        const choice = (await import("./choose-runtime.js")).askRuntime(options);
        const restart = await restartSource(id, options.maxRetries);
        // The environment it ran with, under any --set-env given now.
        const setEnv = { ...restart.env, ...options.setEnv };
        const runOptions: RunOptions = { ...options, set: restart.set, setString: restart.setString, setEnv };
        return (await import("./run-action.js")).runWorkflow(restart.loaded.displayName, runOptions, choice, restart);
      }),
    );
}

/** What restarting run `id` takes from its record: its spec rendered again with its variables, and where it ran from. */
async function restartSource(id: string, maxRetries: number) {
  const [{ openStore }, { loadWorkflowSpec }] = await Promise.all([import("./home.js"), import("../spec/index.js")]);
  const { store } = openStore();
  try {
    const runId = store.resolveRunId(id);
    const header = runId === undefined ? undefined : store.runHeader(runId);
    const submitted = runId === undefined ? undefined : store.submission(runId);
    if (runId === undefined || !header || !submitted)
      throw new NotFoundError("E_RUN_NOT_FOUND", `no run \`${id}\` (or the prefix matches several)`, "`troupe list` shows the runs");
    if (header.user !== null)
      throw new TroupeError(
        "E_SERVER_RUN",
        `run ${runId} is a troupe server's (submitted by ${header.user})`,
        "usage",
        `\`troupe workflow restart ${runId}\` restarts it on its server`,
      );
    if (!isFailure(header.status))
      throw new TroupeError(
        "E_NOT_RESTARTABLE",
        `run ${runId} is ${header.status}; only a failed run is restarted`,
        "usage",
        header.status === "COMPLETED" ? "`troupe run FILE` runs its workflow anew" : "`troupe cancel` it first",
      );
    if (submitted.spec === "")
      throw new TroupeError("E_NOT_RESTARTABLE", `run ${runId} was recorded without its spec; run its file again`, "usage");
    const baseDir = submitted.baseDir ?? process.cwd();
    const loaded = await loadWorkflowSpec(submitted.spec, {
      baseDir,
      variables: { set: submitted.set, setString: submitted.setString },
      maxRetries,
    });
    return {
      of: runId,
      baseDir,
      set: submitted.set,
      setString: submitted.setString,
      env: submitted.env,
      loaded: { ...loaded, displayName: `${runId} (its spec)`, text: submitted.spec },
    };
  } finally {
    store.close();
  }
}
