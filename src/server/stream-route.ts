/**
 * GET /api/workflow/{id}/stream: a workflow as `troupe run` shows it, for the
 * client's live view (`workflow submit --wait`) and `workflow logs` of every
 * task. Newline-delimited JSON, one object a line:
 *   {"type":"event", ...a transition}               status changes, in order
 *   {"type":"output","task","retry_id","data"}      what a task attempt wrote
 *   {"type":"end","status"}                         the last line
 * Without `follow`, what there is now (each task's latest attempt), then the
 * end; with it, everything as it happens (new attempts too) until the run
 * has ended and every byte of its logs was sent. The stream reads on when the
 * run changes (RunChanges: the commits of the main thread) or a log file
 * does (inotify on the run's log directory: only the files it names are
 * read), not on a timer; a slow backstop timer covers a watch that could not
 * be set or an event it missed.
 */
import { closeSync, existsSync, openSync, readSync, watch, type FSWatcher } from "node:fs";
import { basename } from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import { tailOffset, type RunStore, type TokenOwner } from "../store/index.js";
import { RESPONSES } from "./api-responses.js";
import { IdParams, routeSchemas, StreamQuery } from "./api-schemas.js";
import { noTask, noWorkflow } from "./error-reply.js";
import type { RunChanges } from "./run-changes.js";
import { isFinal, type TransitionRecord } from "../model/index.js";

const CHUNK = 64 * 1024;
/** A read now and then whatever the notifications say (a watch that could not be set, a missed event). */
const BACKSTOP_MS = 1_000;

interface FollowedAttempt {
  task: string;
  retry: number;
  path: string;
  offset: number;
  decoder: StringDecoder;
}

export function registerStreamRoute(
  app: FastifyInstance,
  store: RunStore,
  resolve: (idOrPrefix: string, owner: TokenOwner) => string | undefined,
  changes: RunChanges | undefined,
  backstopMs = BACKSTOP_MS,
): void {
  app.get(
    "/api/workflow/:id/stream",
    routeSchemas({ params: IdParams, querystring: StreamQuery }, RESPONSES["GET /api/workflow/:id/stream"]),
    async (request: FastifyRequest<{ Params: { id: string }; Querystring: z.output<typeof StreamQuery> }>, reply: FastifyReply) => {
      const id = resolve(request.params.id, request.owner!);
      if (!id) throw noWorkflow(request.params.id);
      const q = request.query;
      const attempts = store.attempts(id);
      if (q.task !== undefined && !attempts.some((a) => a.task === q.task)) throw noTask(id, q.task);

      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-store" });
      // Now, not with the first line: a client waits for the headers before it reads on, and a run may be quiet.
      out.flushHeaders();
      let closed = false;
      const onClose = () => ((closed = true), wake());
      request.raw.once("close", onClose);
      out.once("close", onClose);
      const send = async (value: object): Promise<void> => {
        if (closed) return;
        if (!out.write(JSON.stringify(value) + "\n"))
          // Both listeners go once either fires: a long stream waits for drain many times (no leak of "close" listeners).
          await new Promise<void>((done) => {
            const settle = () => (out.off("drain", settle), out.off("close", settle), done());
            out.once("drain", settle);
            out.once("close", settle);
          });
      };

      const wantEvents = q.only !== "output";
      const wantOutput = q.only !== "events";
      const followed = new Map<string, FollowedAttempt>();
      const keyOf = (task: string, retry: number) => `${task}\0${retry}`;
      // Followed live (`submit --wait`), a run shows what its own tasks write: a task a restart reused ran elsewhere.
      const reusedSkipped = request.query.follow === true ? new Set(attempts.filter((a) => a.reused_from).map((a) => a.task)) : new Set();
      const follow = (task: string, retry: number, path: string, offset: number) => {
        if (reusedSkipped.has(task)) return;
        if (!followed.has(keyOf(task, retry)))
          followed.set(keyOf(task, retry), { task, retry, path, offset, decoder: new StringDecoder("utf8") });
      };
      // Each task's latest attempt as it is now, from its beginning (or its last n lines).
      const latest = new Map<string, (typeof attempts)[number]>();
      for (const a of attempts) if (q.task === undefined || a.task === q.task) latest.set(a.task, a);
      for (const a of latest.values())
        follow(a.task, a.retry_id, a.log_path, existsSync(a.log_path) && q.n !== undefined ? tailOffset(a.log_path, q.n) : 0);

      /** Sends what the attempt's log has beyond what was sent. */
      const drain = async (attempt: FollowedAttempt): Promise<void> => {
        if (!wantOutput || closed || !existsSync(attempt.path)) return;
        const buffer = Buffer.alloc(CHUNK);
        const fd = openSync(attempt.path, "r");
        try {
          for (;;) {
            const n = readSync(fd, buffer, 0, CHUNK, attempt.offset);
            if (n === 0) break;
            attempt.offset += n;
            const data = attempt.decoder.write(buffer.subarray(0, n));
            if (data) await send({ type: "output", task: attempt.task, retry_id: attempt.retry, data });
            if (closed) break;
          }
        } finally {
          closeSync(fd);
        }
      };

      let lastSeq = 0;
      let runEnded = false;
      /** Log files the watch said changed since the last pass (by name), and whether to read every log anyway. */
      let changedFiles = new Set<string>();
      let readAll = true;
      /**
       * One pass: new transitions in order (an attempt's log sent whole before its end is), then the logs that
       * changed (all of them when `all`): a run of 10,000 tasks is not 10,000 reads at every commit.
       */
      const pass = async (all: boolean, changed: ReadonlySet<string>): Promise<void> => {
        const transitions = store.transitionsAfter(id, lastSeq);
        // Without follow, the attempts are those of now: nothing new is taken up.
        if (request.query.follow && transitions.some((t) => t.task !== null && !followed.has(keyOf(t.task, t.retry_id ?? 0))))
          for (const a of store.attempts(id)) if (q.task === undefined || a.task === q.task) follow(a.task, a.retry_id, a.log_path, 0);
        for (const t of transitions) {
          lastSeq = t.seq;
          if (closed) return;
          const attempt = t.task === null ? undefined : followed.get(keyOf(t.task, t.retry_id ?? 0));
          if (attempt && isFinal(t.to)) await drain(attempt);
          if (wantEvents && (q.task === undefined || t.task === q.task)) await send({ type: "event", ...withoutSeq(t) });
          if (t.group === null && t.task === null && isFinal(t.to)) runEnded = true;
        }
        for (const attempt of followed.values()) if (all || changed.has(basename(attempt.path))) await drain(attempt);
      };

      let watcher: FSWatcher | undefined;
      const watchLogs = () => {
        if (watcher || !q.follow) return;
        try {
          watcher = watch(store.runLogDir(id), (_event, file) => {
            if (file) changedFiles.add(file.toString());
            else readAll = true;
            wake();
          });
          // The backstop reads on meanwhile, every second.
          watcher.on("error", (error) => request.log.debug({ err: error, run: id }, "the watch of the run's logs failed"));
        } catch {
          // Not made yet (a run just submitted): the next pass tries again.
        }
      };
      let wakeUp: (() => void) | undefined;
      let pending = false;
      function wake(): void {
        pending = true;
        wakeUp?.();
      }
      const stopListening = q.follow ? changes?.on(id, wake) : undefined;
      const backstop = q.follow ? setInterval(() => ((readAll = true), wake()), backstopMs) : undefined;
      try {
        for (;;) {
          pending = false;
          watchLogs();
          const endedBefore = runEnded || isFinal(store.runHeader(id)?.status ?? "");
          // Without a watch (none yet, or no follow) and for the last pass, every log is read.
          const all = readAll || watcher === undefined || endedBefore;
          const changed = changedFiles;
          changedFiles = new Set();
          readAll = false;
          await pass(all, changed);
          // Ended before this pass began: the pass read the rest of every log.
          if (closed || !q.follow || endedBefore) break;
          if (!pending) await new Promise<void>((done) => (wakeUp = done));
          wakeUp = undefined;
        }
        if (!closed) {
          for (const attempt of followed.values()) {
            const rest = attempt.decoder.end();
            if (rest) await send({ type: "output", task: attempt.task, retry_id: attempt.retry, data: rest });
          }
          await send({ type: "end", status: store.runHeader(id)?.status ?? "UNKNOWN" });
        } else request.log.debug({ run: id, user: request.owner?.name }, "the client went away before the stream's end");
      } finally {
        stopListening?.();
        if (backstop) clearInterval(backstop);
        watcher?.close();
        request.raw.off("close", onClose);
        out.off("close", onClose);
        out.end();
      }
    },
  );
}

function withoutSeq(t: TransitionRecord & { seq: number }): TransitionRecord {
  const { seq: _seq, ...rest } = t;
  return rest;
}
