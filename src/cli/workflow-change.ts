/** `troupe workflow cancel|tag`: changing workflows on the server (yours, or anyone's as an admin). */
import { Command } from "commander";
import { TroupeError, UsageError } from "../errors/index.js";
import { call } from "./client.js";
import { action, outputOption, writeJson, type OutputFormat } from "./shared.js";

const path = (id: string, rest: string) => `/api/workflow/${encodeURIComponent(id)}${rest}`;
const append = (value: string, previous: string[]): string[] => [...previous, value];

export function cancelCommand(): Command {
  return new Command("cancel")
    .description("cancel running workflows (yours, or anyone's as an admin)")
    .argument("<ids...>", "one or more workflows")
    .option("-m, --message <text>", "why: recorded as the reason of the cancel")
    .option("-f, --force", "kill at once instead of SIGTERM and a grace period", false)
    .addOption(outputOption())
    .addHelpText(
      "after",
      `
Exit code 0 when every workflow is being canceled, 2 when one could not be (each says why; the others still are).

Examples:
  $ troupe workflow cancel train-3
  $ troupe workflow cancel train-3 train-4 --message "wrong dataset"`,
    )
    .action(action(cancel));
}

async function cancel(ids: string[], options: { message?: string; force: boolean; output: OutputFormat }): Promise<number> {
  if (options.message !== undefined && options.message.trim() === "") throw new UsageError("--message is empty");
  const results: Array<{ id: string; canceling: boolean; error?: string }> = [];
  for (const id of ids) {
    try {
      const { status, body } = await call<{ error?: string }>("POST", path(id, "/cancel"), {
        force: options.force,
        ...(options.message !== undefined ? { message: options.message } : {}),
      });
      results.push(status >= 400 ? { id, canceling: false, error: body.error ?? `HTTP ${status}` } : { id, canceling: true });
    } catch (error) {
      // One workflow that cannot be canceled (not found, not yours) does not stop the others.
      if (!(error instanceof TroupeError) || error.kind === "system") throw error;
      results.push({ id, canceling: false, error: error.message });
    }
  }
  if (options.output === "json") writeJson(results);
  else
    for (const r of results)
      if (r.canceling) process.stdout.write(`canceling ${r.id}\n`);
      else process.stderr.write(`cannot cancel ${r.id}: ${r.error}\n`);
  return results.every((r) => r.canceling) ? 0 : 2;
}

export function tagCommand(): Command {
  return new Command("tag")
    .description("add or remove tags of workflows (yours, or anyone's as an admin); without --workflow, the tags in use")
    .option("-w, --workflow <id>", "a workflow to change; repeatable", append, [])
    .option("-a, --add <tag>", "a tag to add; repeatable", append, [])
    .option("-r, --remove <tag>", "a tag to remove (before those added); repeatable", append, [])
    .addHelpText(
      "after",
      `
Examples:
  $ troupe workflow tag --workflow train-3 --add baseline --add paper
  $ troupe workflow tag --workflow train-3 --remove paper
  $ troupe workflow tag
  $ troupe workflow list --tags baseline`,
    )
    .action(action(tag));
}

async function tag(options: { workflow: string[]; add: string[]; remove: string[] }): Promise<number> {
  const changing = options.add.length > 0 || options.remove.length > 0;
  if (changing && options.workflow.length === 0) throw new UsageError("no workflow given to add or remove tags of (--workflow ID)");
  if (!changing && options.workflow.length > 0) throw new UsageError("no tags given to add or remove (--add TAG, --remove TAG)");
  if (!changing) {
    const { body } = await call<{ tags: string[] }>("GET", "/api/tag");
    process.stdout.write(
      body.tags.length === 0 ? "no workflow has tags yet\n" : `tags in use:\n${body.tags.map((t) => `- ${t}\n`).join("")}`,
    );
    return 0;
  }
  for (const id of options.workflow) {
    const { status, body } = await call<{ tags?: string[]; error?: string; code?: string }>("POST", path(id, "/tag"), {
      add: options.add,
      remove: options.remove,
    });
    if (status >= 400) throw new TroupeError(body.code ?? "E_REQUEST", `${id}: ${body.error ?? `HTTP ${status}`}`, "usage");
    process.stdout.write(`${id}: ${body.tags!.length > 0 ? body.tags!.join(", ") : "no tags"}\n`);
  }
  return 0;
}
