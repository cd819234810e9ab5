/**
 * One workflow: its group graph, its tasks with their reasons, its status changes, and cancel / restart /
 * resubmit as the API allows them.
 * The statuses change as the workflow's stream (GET .../stream?follow&only=events) pushes them, applied to the
 * record in the page (live/apply-events.ts); the whole record is read again at most every 2 s (longer for big
 * records) while events come, and once the run has ended.
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
import { applyEvents } from "../live/apply-events";
import { Timeline } from "../timeline/Timeline";

/** Events come in bursts (a group starting is one per task): applied to the record once per burst. */
const REREAD_MS = 150;
/** The whole record is read again at most this often (or ten times as long as a read takes, for big records). */
const FULL_READ_MS = 2_000;

export function WorkflowPage({ id }: { id: string }) {
  const session = useSession();
  const [record, setRecord] = useState<RunRecord | undefined>();
  const [spec, setSpec] = useState<string | undefined>();
  const [written, setWritten] = useState<string | undefined>();
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
    // Every event applied so far: those that came while a read of the record was under way are applied to it.
    const applied: EventLine[] = [];
    let lastRead = -Infinity;
    let readCost = 0;
    let readTimer: number | undefined;
    /** A read is under way; another was asked for meanwhile (it follows, rather than running beside it). */
    let reading = false;
    let readAgain = false;
    const load = (): Promise<void> => {
      if (reading) {
        readAgain = true;
        return Promise.resolve();
      }
      reading = true;
      const started = performance.now();
      const from = applied.length;
      return getJson<RunRecord>(workflowApi(id), abort.signal)
        .then(
          (read) => {
            readCost = performance.now() - started;
            lastRead = performance.now();
            setRecord(applyEvents(read, applied.slice(from)));
            setLoadError(undefined);
          },
          (caught: Error) => {
            if (!abort.signal.aborted) setLoadError(caught.message);
          },
        )
        .finally(() => {
          reading = false;
          if (readAgain && !abort.signal.aborted) {
            readAgain = false;
            readSoon(false);
          }
        });
    };
    /** The whole record read again (exit codes, times), but not more often than a big record's reading allows. */
    const readSoon = (atOnce: boolean) => {
      const wait = atOnce ? 0 : Math.max(0, lastRead + Math.max(FULL_READ_MS, readCost * 10) - performance.now());
      window.clearTimeout(readTimer);
      if (wait === 0) {
        readTimer = undefined;
        void load();
      } else readTimer = window.setTimeout(() => ((readTimer = undefined), void load()), wait);
    };
    // The events are asked for once the record is in: a big run's events (4 a task, every one since the start)
    // would otherwise hold up its record at the server, and the page's first paint with it.
    const firstRead = load();
    getText(workflowApi(id, "/spec"), abort.signal).then(setSpec, () => setSpec(""));
    const reread = (atOnce = false) => {
      window.clearTimeout(rereadTimer.current);
      rereadTimer.current = window.setTimeout(() => {
        const batch = arrived.splice(0);
        if (batch.length > 0) {
          applied.push(...batch);
          setRecord((old) => old && applyEvents(old, batch));
          setEvents((old) => old.concat(batch).slice(-EVENTS_SHOWN));
          setHistory((old) => old.concat(batch));
        }
        readSoon(atOnce);
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
    const restart = () => (arrived.splice(0), applied.splice(0), setEvents([]), setHistory([]));
    // The stream's end: the run has ended, its record is read once more, whole.
    void firstRead.then(() => {
      if (abort.signal.aborted) return;
      followLive(workflowApi(id, "/stream?follow=true&only=events"), onLine, abort.signal, restart).then(
        () => reread(true),
        () => undefined,
      );
    });
    return () => {
      abort.abort();
      window.clearTimeout(rereadTimer.current);
      window.clearTimeout(readTimer);
    };
  }, [id]);

  const act = async (verb: "cancel" | "restart" | "resubmit") => {
    setBusy(true);
    setError(undefined);
    try {
      if (verb === "cancel") {
        await postJson(workflowApi(id, "/cancel"), { message: "from the web UI" });
        setNotice("Cancel asked: the tasks are being stopped.");
      } else if (verb === "restart") {
        const restarted = await postJson<{ id: string }>(workflowApi(id, "/restart"));
        navigate(workflowPath(restarted.id));
      } else {
        // OSMO's resubmit (`workflow submit ID`): its spec as rendered, again, as a new workflow in its pool.
        const pool = encodeURIComponent(record?.pool ?? "default");
        const resubmitted = await postJson<{ id: string }>(`/api/pool/${pool}/workflow`, { workflow_id: id });
        navigate(workflowPath(resubmitted.id));
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
          {!session.read_only && (
            <button type="button" disabled={busy} onClick={() => void act("resubmit")}>
              Resubmit
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
      <details
        className="spec"
        onToggle={(event) => {
          // Read when first opened: most visits never look at it.
          if ((event.target as HTMLDetailsElement).open && written === undefined)
            getText(workflowApi(id, "/spec?template=true")).then(setWritten, (caught: Error) =>
              setWritten(`Could not read it: ${caught.message}`),
            );
        }}
      >
        <summary>Spec, as submitted (its templates as written)</summary>
        <pre tabIndex={0} aria-label="Spec as submitted">
          {written ?? "Loading…"}
        </pre>
      </details>
    </main>
  );
}
