/**
 * Following a server's workflow as `troupe run` shows a local one: the
 * server's stream (GET /api/workflow/{id}/stream, newline-delimited JSON of
 * status changes and task output) fed to the same RunView, so `workflow
 * submit --wait` and `workflow restart --wait` look like `troupe run`, and
 * `workflow logs` without --task prefixes each task's lines as it does.
 */
import type { EngineEvent } from "../engine/index.js";
import { TroupeError } from "../errors/index.js";
import { call, stream } from "./client.js";
import { isClosed } from "./output.js";
import type { RunView } from "./run-view.js";
import { isFinal, type RunRecord, type TransitionRecord } from "../model/index.js";

/** One line of the stream. */
export type StreamItem =
  | ({ type: "event" } & TransitionRecord)
  | { type: "output"; task: string; retry_id: number; data: string }
  | { type: "end"; status: string };

/** The stream's items as they come; ends with the stream (the last item is `end` unless the connection broke). */
export async function* streamItems(id: string, query: URLSearchParams): AsyncGenerator<StreamItem> {
  const response = await stream(`/api/workflow/${encodeURIComponent(id)}/stream?${query}`);
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of response.body ?? []) {
    const lines = (rest + decoder.decode(chunk as Uint8Array, { stream: true })).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") yield JSON.parse(line) as StreamItem;
  }
}

/** A transition as the engine reported it to `troupe run`'s view. */
export function engineEventOf(t: TransitionRecord): EngineEvent {
  return {
    kind: t.task !== null ? "task" : t.group !== null ? "group" : "run",
    ...(t.group !== null ? { group: t.group } : {}),
    ...(t.task !== null ? { task: t.task } : {}),
    ...(t.retry_id !== null ? { retryId: t.retry_id } : {}),
    from: t.from,
    to: t.to,
    reason: t.reason,
    time: Date.parse(t.time),
  };
}

/** The groups and tasks a RunView lays out, from a run's record. */
export function viewGroups(record: RunRecord): Array<{ name: string; tasks: string[] }> {
  return record.groups.map((g) => ({ name: g.name, tasks: g.tasks.map((t) => t.name) }));
}

/**
 * Shows the workflow's status changes and output in `view` until it ends.
 * Returns its final status, or undefined when the stream broke before the end.
 */
export async function watchRun(id: string, view: RunView): Promise<string | undefined> {
  try {
    for await (const item of streamItems(id, new URLSearchParams({ follow: "true" }))) {
      if (item.type === "event") view.event(engineEventOf(item));
      else if (item.type === "output") view.output(item.task, Buffer.from(item.data, "utf8"));
      else return item.status;
    }
  } catch (error) {
    // The connection broke mid-stream (a server that stopped): the caller waits for the end another way.
    if (error instanceof TroupeError) throw error;
  }
  return undefined;
}

/** How long a followed workflow's server may be away (restarting, say) before following it gives up. */
const SERVER_AWAY_MS = 120_000;

/** Waits for the workflow's end by asking for its record (when its stream broke: a server that restarted, say). */
export async function pollUntilEnded(id: string): Promise<RunRecord> {
  let awaySince: number | undefined;
  for (;;) {
    try {
      const record = (await call<RunRecord>("GET", `/api/workflow/${encodeURIComponent(id)}`)).body;
      awaySince = undefined;
      if (isFinal(record.status)) return record;
    } catch (error) {
      if (!(error instanceof TroupeError && error.code === "E_SERVER_UNREACHABLE")) throw error;
      awaySince ??= Date.now();
      if (Date.now() - awaySince > SERVER_AWAY_MS) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Every task's output, prefixed as the live view prefixes it (`task | line`): what there is (each task's latest
 * attempt, or its last `lines` lines), or with `follow` everything until the workflow ends. Stops when nobody
 * reads the output any more.
 */
export async function printTaskOutput(id: string, view: RunView, options: { follow: boolean; lines?: number }): Promise<void> {
  const query = new URLSearchParams({ only: "output", follow: String(options.follow) });
  if (options.lines !== undefined) query.set("n", String(options.lines));
  for await (const item of streamItems(id, query)) {
    if (item.type === "output") view.output(item.task, Buffer.from(item.data, "utf8"));
    if (isClosed(process.stdout)) break;
  }
  view.finish();
}
