/**
 * GET /api/workflow/changes: which workflows changed, as they do, for the web
 * UI's list (which reads the list again when told, instead of every few
 * seconds). Newline-delimited JSON: `{"type":"ready"}` once it listens (a
 * client reads the list then: nothing that changes after is missed),
 * `{"type":"changed","ids":[...]}` lines,
 * only of workflows the token may read, each id at most once per batch (a run
 * of thousands of tasks commits many times a second; the batches go out
 * every BATCH_MS at most), and `{"type":"idle"}` every IDLE_MS so that a
 * proxy does not close a quiet stream. It ends when the client goes. Only a
 * server has it (RunChanges: the main thread's commits); `troupe ui` answers
 * 404 and its page reads on a timer.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { TokenOwner } from "../store/index.js";
import { RESPONSES } from "./api-responses.js";
import { routeSchemas } from "./api-schemas.js";
import type { RunChanges } from "./run-changes.js";

const BATCH_MS = 250;
const IDLE_MS = 25_000;

export function registerChangesRoute(
  app: FastifyInstance,
  resolve: (id: string, owner: TokenOwner) => string | undefined,
  changes: RunChanges,
  batchMs = BATCH_MS,
): void {
  app.get(
    "/api/workflow/changes",
    routeSchemas({}, RESPONSES["GET /api/workflow/changes"]),
    async (request: FastifyRequest, reply: FastifyReply) => {
      const owner = request.owner!;
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-store" });
      out.flushHeaders();
      const pending = new Set<string>();
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        timer = undefined;
        // Another user's workflow is as good as absent (private workflows): checked for each, as every route does.
        const ids = [...pending].filter((id) => resolve(id, owner) === id);
        pending.clear();
        if (ids.length > 0) out.write(JSON.stringify({ type: "changed", ids }) + "\n");
      };
      const stop = changes.onAny((id) => {
        pending.add(id);
        timer ??= setTimeout(flush, batchMs);
      });
      out.write(JSON.stringify({ type: "ready" }) + "\n");
      const idle = setInterval(() => out.write(JSON.stringify({ type: "idle" }) + "\n"), IDLE_MS);
      await new Promise<void>((done) => {
        request.raw.once("close", done);
        out.once("close", done);
      });
      stop();
      clearInterval(idle);
      clearTimeout(timer);
      out.end();
    },
  );
}
