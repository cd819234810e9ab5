/**
 * One workflow: its group graph, its tasks with their reasons, its status changes, and cancel / restart as the
 * API allows them.
 * The record is read again whenever the workflow's stream (GET .../stream?follow&only=events) says a status
 * changed: pushed by the server, not polled.
 */
import { useEffect, useRef, useState } from "react";
import { isFinal, type RunRecord } from "../../../src/model/index.js";
import { followLive, getJson, getText, postJson, workflowApi, type StreamLine } from "../api";
import { useSession } from "../App";
import { GroupGraph } from "../graph/GroupGraph";
import { Link } from "../Link";
import { logsPath, navigate, workflowPath } from "../router";
import { shortTime, StatusBadge } from "../status";
import { EventTable, EVENTS_SHOWN, type EventLine } from "./EventTable";
import { TaskTable } from "./TaskTable";
import { Timeline } from "../timeline/Timeline";

/** Events come in bursts (a group starting is one per task): one read of the record for each burst. */
const REREAD_MS = 150;

export function WorkflowPage({ id }: { id: string }) {
  const session = useSession();
  const [record, setRecord] = useState<RunRecord | undefined>();
  const [spec, setSpec] = useState<string | undefined>();
  const [events, setEvents] = useState<EventLine[]>([]);
  /** Every event since the start, for the timeline (the table keeps the newest only). */
  const [history, setHistory] = useState<EventLine[]>([]);
  /** When the page last heard of a change: the end of the phases still going on. */
  const [now, setNow] = useState(() => Date.now());
  /** A cancel or restart refused. */
  const [error, setError] = useState<string | undefined>();
  /** The record could not be read (the last time it was tried). */
  const [loadError, setLoadError] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const rereadTimer = useRef<number | undefined>(undefined);

  useEffect(() => {
    // Another workflow is a new page (App keys it by id): its state starts afresh.
    const abort = new AbortController();
    const load = () =>
      getJson<RunRecord>(workflowApi(id), abort.signal).then(
        (read) => (setRecord(read), setLoadError(undefined)),
        (caught: Error) => {
          if (!abort.signal.aborted) setLoadError(caught.message);
        },
      );
    void load();
    getText(workflowApi(id, "/spec"), abort.signal).then(setSpec, () => setSpec(""));
    const reread = () => {
      window.clearTimeout(rereadTimer.current);
      rereadTimer.current = window.setTimeout(() => {
        void load();
        const batch = arrived.splice(0);
        if (batch.length > 0) {
          setEvents((old) => old.concat(batch).slice(-EVENTS_SHOWN));
          setHistory((old) => old.concat(batch));
        }
        setNow(Date.now());
      }, REREAD_MS);
    };
    // Events are shown with the record they led to, in the same burst.
    const arrived: EventLine[] = [];
    const onLine = (line: StreamLine) => {
      if (line.type === "event") arrived.push(line);
      reread();
    };
    // Sent again from the start after a reconnect: the events shown so far go.
    const restart = () => (arrived.splice(0), setEvents([]), setHistory([]));
    followLive(workflowApi(id, "/stream?follow=true&only=events"), onLine, abort.signal, restart).then(reread, () => undefined);
    return () => {
      abort.abort();
      window.clearTimeout(rereadTimer.current);
    };
  }, [id]);

  const act = async (verb: "cancel" | "restart") => {
    setBusy(true);
    setError(undefined);
    try {
      if (verb === "cancel") {
        await postJson(workflowApi(id, "/cancel"), { message: "from the web UI" });
        setNotice("Cancel asked: the tasks are being stopped.");
      } else {
        const restarted = await postJson<{ id: string }>(workflowApi(id, "/restart"));
        navigate(workflowPath(restarted.id));
      }
    } catch (caught) {
      setError((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };

  if (!record)
    return (
      <main>
        <h1>{id}</h1>
        {loadError ? (
          <p role="alert" className="error">
            {loadError}
          </p>
        ) : (
          <p>Loading…</p>
        )}
      </main>
    );
  const ended = isFinal(record.status);
  const canRestart = ended && record.status !== "COMPLETED" && !session.read_only;
  return (
    <main className="workflow">
      <p className="crumbs">
        <Link to="/workflows">Workflows</Link> / {record.id}
      </p>
      <div className="title">
        <h1>{record.name}</h1>
        <StatusBadge status={record.status} />
        <span className="actions">
          <Link className="button" to={logsPath(record.id)}>
            Logs
          </Link>
          {!ended && (
            <button type="button" disabled={busy} onClick={() => void act("cancel")}>
              Cancel
            </button>
          )}
          {canRestart && (
            <button type="button" disabled={busy} onClick={() => void act("restart")}>
              Restart
            </button>
          )}
        </span>
      </div>
      <dl className="facts">
        <dt>ID</dt>
        <dd>{record.id}</dd>
        <dt>Submitted</dt>
        <dd>{shortTime(record.submit_time)}</dd>
        <dt>Started</dt>
        <dd>{shortTime(record.start_time)}</dd>
        <dt>Ended</dt>
        <dd>{shortTime(record.end_time)}</dd>
        {record.pool && (
          <>
            <dt>Pool</dt>
            <dd>{record.pool}</dd>
          </>
        )}
        {record.user && (
          <>
            <dt>User</dt>
            <dd>{record.user}</dd>
          </>
        )}
      </dl>
      {notice && !ended && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      {(error ?? loadError) && (
        <p role="alert" className="error">
          {error ?? `Not up to date: ${loadError}`}
        </p>
      )}
      <h2>Groups</h2>
      <GroupGraph record={record} spec={spec} />
      <h2>Timeline</h2>
      <Timeline events={history} now={ended && record.end_time ? Date.parse(record.end_time) : now} />
      <h2>Tasks</h2>
      <TaskTable record={record} />
      <h2>Events</h2>
      <EventTable events={events} />
      <details className="spec">
        <summary>Spec, as it ran (after templating)</summary>
        <pre tabIndex={0} aria-label="Spec as it ran">
          {spec ?? "Loading…"}
        </pre>
      </details>
    </main>
  );
}
