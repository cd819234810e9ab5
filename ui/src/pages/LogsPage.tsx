/**
 * A task's output, followed live from the workflow's stream
 * (GET .../stream?follow&only=output&task=T): every attempt, each under a
 * line naming its retry. Without a task: every task's, interleaved as
 * `troupe workflow logs` prints them, each line after its task's name.
 */
import { useEffect, useRef, useState } from "react";
import type { RunRecord } from "../../../src/model/index.js";
import { followLive, getJson, workflowApi, type StreamLine } from "../api";
import { Link } from "../Link";
import { LogText } from "../log-text";
import { LogView } from "../logs/LogView";
import { logsPath, navigate, workflowPath } from "../router";

/** The most text kept on the page: beyond it, the oldest goes (the whole log is the API's). */
const MAX_CHARS = 2_000_000;

/** Cut from the first whole line: a cut mid-line could be mid colour code. */
const fromLineStart = (text: string) => text.slice(text.indexOf("\n") + 1);

export function LogsPage({ id, task }: { id: string; task: string | undefined }) {
  const [record, setRecord] = useState<RunRecord | undefined>();
  const [text, setText] = useState("");
  const [state, setState] = useState<"following" | "ended" | "failed">("following");
  const [error, setError] = useState<string | undefined>();
  const bottom = useRef<HTMLPreElement>(null);
  const follow = useRef(true);

  useEffect(() => {
    const abort = new AbortController();
    getJson<RunRecord>(workflowApi(id), abort.signal).then(setRecord, () => undefined);
    return () => abort.abort();
  }, [id]);

  useEffect(() => {
    // A new task or workflow is a new page (App keys it): its state starts afresh.
    const abort = new AbortController();
    let shown = new LogText(task);
    const onLine = (line: StreamLine) => {
      if (line.type === "event") return;
      const add = line.type === "end" ? shown.end() : shown.output(line.task, line.retry_id, line.data);
      if (line.type === "end") setState("ended");
      if (add) setText((old) => (old.length + add.length > MAX_CHARS ? fromLineStart((old + add).slice(-MAX_CHARS)) : old + add));
    };
    const query = `follow=true&only=output${task === undefined ? "" : `&task=${encodeURIComponent(task)}`}`;
    // Sent again from the start after a reconnect: what was shown goes.
    const restart = () => {
      shown = new LogText(task);
      setText("");
    };
    followLive(workflowApi(id, `/stream?${query}`), onLine, abort.signal, restart).catch((caught: Error) => {
      if (abort.signal.aborted) return;
      setState("failed");
      setError(caught.message);
    });
    return () => abort.abort();
  }, [id, task]);

  // Kept at the bottom as lines come, unless the reader scrolled up.
  useEffect(() => {
    const pre = bottom.current;
    if (pre && follow.current) pre.scrollTop = pre.scrollHeight;
  }, [text]);

  const tasks = record?.groups.flatMap((g) => g.tasks.map((t) => t.name)) ?? [];
  return (
    <main className="logs">
      <p className="crumbs">
        <Link to="/workflows">Workflows</Link> / <Link to={workflowPath(id)}>{id}</Link> / logs
      </p>
      <h1>Logs{task !== undefined ? ` of ${task}` : ""}</h1>
      <div className="log-bar">
        <label>
          Task
          <select value={task ?? ""} onChange={(event) => navigate(logsPath(id, event.target.value || undefined), { replace: true })}>
            <option value="">every task, interleaved</option>
            {tasks.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <span role="status" className={`stream-state ${state}`}>
          {state === "following" ? "following live…" : state === "ended" ? "the workflow has ended: this is all" : "the stream broke"}
        </span>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <LogView
        text={text}
        scroller={bottom}
        label={`Output${task !== undefined ? ` of ${task}` : ""}`}
        fileName={`${id}${task !== undefined ? `-${task}` : ""}.log`}
        empty={state === "following" ? "" : "(no output)"}
        onScroll={(event) => {
          const pre = event.currentTarget;
          follow.current = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
        }}
      />
    </main>
  );
}
