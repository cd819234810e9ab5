/**
 * GET /api/workflow/{id}/logs: one task attempt's complete output, or its
 * last `n` lines; with `follow`, a stream that goes on as the task writes and
 * ends once the attempt has ended and every byte of its log has been sent.
 */
import { existsSync, openSync, readSync, closeSync, createReadStream } from "node:fs";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { readFrom, tailOffset, type RunStore, type TokenOwner } from "../store/index.js";
import { ErrorLogsQuery, IdParams, routeSchemas } from "./api-schemas.js";
import { RESPONSES } from "./api-responses.js";
import { noAttempt, noTask, noWorkflow } from "./error-reply.js";
import { TroupeError } from "../errors/index.js";
import { hasErrorLogs, isFinal } from "../model/index.js";

export const LogsQuery = z
  .object({
    task: z.string().min(1).max(256).optional().describe("the task (needed when the workflow has several)"),
    retry_id: z.coerce.number().int().min(0).optional().describe("the attempt (default: the latest)"),
    n: z.coerce.number().int().min(0).optional().describe("only the last n lines"),
    follow: z
      .enum(["true", "false", "1", "0"])
      .optional()
      .transform((v) => v === "true" || v === "1"),
  })
  .strict();

const POLL_MS = 100;
const CHUNK = 1024 * 1024;

/** `resolve(idOrPrefix, owner)`: the workflow it names among those the caller may read (app.ts). */
export function registerLogsRoute(
  app: FastifyInstance,
  store: RunStore,
  resolve: (idOrPrefix: string, owner: TokenOwner) => string | undefined,
): void {
  app.get(
    "/api/workflow/:id/error_logs",
    routeSchemas({ params: IdParams, querystring: ErrorLogsQuery }, RESPONSES["GET /api/workflow/:id/error_logs"]),
    async (request: FastifyRequest<{ Params: { id: string }; Querystring: z.output<typeof ErrorLogsQuery> }>, reply: FastifyReply) => {
      const id = resolve(request.params.id, request.owner!);
      if (!id) throw noWorkflow(request.params.id);
      const q = request.query;
      let attempts = store.attempts(id);
      if (q.task !== undefined) {
        const ofTask = attempts.filter((a) => a.task === q.task);
        if (ofTask.length === 0) throw noTask(id, q.task);
        const retry = q.retry_id ?? Math.max(...ofTask.map((a) => a.retry_id));
        attempts = ofTask.filter((a) => a.retry_id === retry);
        if (attempts.length === 0) throw noAttempt(q.task, retry);
      }
      // Each attempt's section: a line saying which and how it ended, then its last lines.
      const sections = attempts
        .filter((a) => hasErrorLogs(a.status))
        .map((a) => {
          const head = `--- ${a.task} retry ${a.retry_id}: ${a.status}${a.exit_code === null ? "" : ` (exit code ${a.exit_code})`} ---\n`;
          const text = existsSync(a.log_path) ? readFrom(a.log_path, tailOffset(a.log_path, q.n)).toString("utf8") : "";
          return head + text + (text === "" || text.endsWith("\n") ? "" : "\n");
        });
      return reply.type("text/plain; charset=utf-8").send(sections.join(""));
    },
  );
  app.get(
    "/api/workflow/:id/logs",
    routeSchemas({ params: IdParams, querystring: LogsQuery }, RESPONSES["GET /api/workflow/:id/logs"]),
    async (request: FastifyRequest<{ Params: { id: string }; Querystring: z.output<typeof LogsQuery> }>, reply: FastifyReply) => {
      const id = resolve(request.params.id, request.owner!);
      if (!id) throw noWorkflow(request.params.id);
      const q = request.query;
      const attempts = store.attempts(id);
      const tasks = [...new Set(attempts.map((a) => a.task))];
      const task = q.task ?? (tasks.length === 1 ? tasks[0] : undefined);
      if (task === undefined)
        throw new TroupeError("E_TASK_NEEDED", `workflow ${id} has ${tasks.length} tasks; name one: task=${tasks.join("|")}`, "usage");
      const ofTask = attempts.filter((a) => a.task === task);
      if (ofTask.length === 0) throw noTask(id, task);
      const retry = q.retry_id ?? Math.max(...ofTask.map((a) => a.retry_id));
      const attempt = ofTask.find((a) => a.retry_id === retry);
      if (!attempt) throw noAttempt(task, retry);
      const path = attempt.log_path;
      const offset = existsSync(path) ? tailOffset(path, q.n) : 0;
      if (!q.follow) {
        reply.type("text/plain; charset=utf-8");
        return existsSync(path) ? reply.send(createReadStream(path, { start: offset })) : reply.send("");
      }
      // Follow: poll the file; the stream ends once the attempt has ended and nothing is left to read.
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      // The client gone (either side's close): stop, and let go of the file.
      let closed = false;
      const onClose = () => (closed = true);
      request.raw.once("close", onClose);
      out.once("close", onClose);
      // A write the client has not taken yet: wait for it to, or for the client to go (then no drain ever comes).
      const drained = () =>
        new Promise<void>((resolve) => {
          if (closed || out.destroyed) return resolve();
          const settle = () => {
            out.off("drain", settle);
            out.off("close", settle);
            request.raw.off("close", settle);
            resolve();
          };
          out.once("drain", settle);
          out.once("close", settle);
          request.raw.once("close", settle);
        });
      let position = offset;
      const buffer = Buffer.alloc(CHUNK);
      const ended = () => isFinal(store.attemptStatus(id, task, retry) ?? "");
      while (!closed) {
        const wasEnded = ended();
        let read = 0;
        if (existsSync(path)) {
          const fd = openSync(path, "r");
          try {
            for (;;) {
              const n = readSync(fd, buffer, 0, CHUNK, position);
              if (n === 0) break;
              position += n;
              read += n;
              if (!out.write(Buffer.from(buffer.subarray(0, n)))) await drained();
              if (closed) break;
            }
          } finally {
            closeSync(fd);
          }
        }
        // Ended before this read began: what was read was the rest of the log.
        if (wasEnded && read === 0) break;
        if (read === 0) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      request.raw.off("close", onClose);
      out.off("close", onClose);
      out.end();
    },
  );
}
