/**
 * `troupe cancel RUN [RUN...]`: stop local runs that a `troupe run` in another
 * terminal is driving. The request goes in the store (cli/cancel-watch.ts);
 * the run's process stops its tasks and records the run FAILED_CANCELED. A
 * run whose process is gone is settled as every troupe command settles such
 * runs (FAILED_SERVER_ERROR: the process ended before the run did).
 */
import { Command } from "commander";
import type { RunStore } from "../store/index.js";
import { isRunOwnerAlive } from "../util/process-identity.js";
import { action, colorsFor, parseNonNegativeInt } from "./shared.js";
import { isFinal } from "../model/index.js";

const POLL_MS = 100;

interface CancelOptions {
  force: boolean;
  message?: string;
  wait: boolean;
  timeout: number;
}

export function cancelCommand(): Command {
  return new Command("cancel")
    .description("cancel local runs that are running (started by `troupe run` in another terminal), and wait until they have stopped")
    .argument("<runs...>", "run ids, or unique prefixes of them")
    .option("--force", "stop the tasks at once instead of SIGTERM and a grace period", false)
    .option("-m, --message <text>", "why, recorded as the reason of the cancel")
    .option("--no-wait", "return once the cancel is asked, without waiting for the runs to stop")
    .option("--timeout <seconds>", "wait at most this long for the runs to stop", parseNonNegativeInt("--timeout"), 60)
    .addHelpText(
      "after",
      `
Exit codes: 0 every run canceled (or had ended already), 1 one was not found or did not stop in time, 2 bad usage.

Examples:
  $ troupe cancel ddp-train-3
  $ troupe cancel ddp-train-3 ddp-train-4 --message "wrong learning rate" --force`,
    )
    .action(
      action(async (ids: string[], options: CancelOptions) => {
        const { openStore } = await import("./home.js");
        // Opening the home settles runs whose process is gone (as every troupe command does).
        const { store, settled } = openStore();
        try {
          const outcomes = await Promise.all(ids.map((id) => cancelOne(store, id, options, new Set(settled))));
          return outcomes.every(Boolean) ? 0 : 1;
        } finally {
          store.close();
        }
      }),
    );
}

/** Cancels one run and says how it went; false when it could not be (not found, a server's, still running at the timeout). */
async function cancelOne(store: RunStore, id: string, options: CancelOptions, settledNow: ReadonlySet<string>): Promise<boolean> {
  const c = colorsFor(process.stdout);
  const fail = (message: string, hint?: string): false => {
    const cs = colorsFor(process.stderr);
    process.stderr.write(`${cs.red(cs.bold("error"))} ${message}${hint ? cs.dim(` (${hint})`) : ""}\n`);
    return false;
  };
  const runId = store.resolveRunId(id);
  const header = runId === undefined ? undefined : store.runHeader(runId);
  if (runId === undefined || !header)
    return fail(`E_RUN_NOT_FOUND: no run \`${id}\` (or the prefix matches several)`, "`troupe list` shows the runs");
  if (header.user !== null)
    return fail(`E_SERVER_RUN: run ${runId} is a troupe server's (submitted by ${header.user})`, `\`troupe workflow cancel ${runId}\``);
  if (settledNow.has(runId)) {
    process.stdout.write(`${runId}: ${c.bold(header.status)} (its troupe process had ended; the run is settled)\n`);
    return true;
  }
  if (isFinal(header.status)) {
    process.stdout.write(`${runId} had ended already: ${c.bold(header.status)}\n`);
    return true;
  }
  const reason = `canceled by \`troupe cancel\`${options.message ? `: ${options.message}` : ""}`;
  store.cancelRequests.request(runId, { force: options.force, reason, time: Date.now() });
  if (!options.wait) {
    process.stdout.write(`canceling ${runId}\n`);
    return true;
  }
  const deadline = Date.now() + options.timeout * 1000;
  for (;;) {
    // A run whose process died meanwhile (or before) is settled here, as by any troupe command that opens the home.
    store.settleOrphanedRuns(isRunOwnerAlive);
    const status = store.runHeader(runId)?.status ?? "?";
    if (isFinal(status)) {
      const settled = status === "FAILED_SERVER_ERROR" ? " (its troupe process had ended; the run is settled)" : "";
      process.stdout.write(`${runId}: ${c.bold(status)}${settled}\n`);
      return true;
    }
    if (Date.now() >= deadline)
      return fail(
        `E_CANCEL_TIMEOUT: run ${runId} is still ${status} after ${options.timeout}s; the cancel stays asked`,
        "`troupe cancel --force` stops its tasks at once",
      );
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
