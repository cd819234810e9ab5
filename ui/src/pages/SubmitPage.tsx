/**
 * Submit a workflow: its YAML in an editor, `--set` variables, the pool; a dry run (the server validates and plans,
 * runs nothing) shows the plan as a graph, the server's diagnostics are shown at their lines; a submission goes to
 * the new workflow's page. The server decides everything: this page only shows what it says.
 */
import { useEffect, useMemo, useState } from "react";
import type { RunRecord } from "../../../src/model/index.js";
import { ApiError, getJson, postJson } from "../api";
import { GroupGraph } from "../graph/GroupGraph";
import type { GroupEdge } from "../graph/edges";
import { navigate, workflowPath } from "../router";
import { marksOf, parseVariables, type ServerDiagnostic } from "../submit/diagnostics";
import { YamlEditor } from "../submit/YamlEditor";

interface PlanShape {
  groups: { name: string; tasks: { name: string; lead: boolean }[]; upstream: string[] }[];
}
interface Validated {
  valid: true;
  name: string;
  groups: number;
  tasks: number;
  plan?: PlanShape;
  /** Its warnings, when it has any. */
  diagnostics?: ServerDiagnostic[];
}

const EXAMPLE = `workflow:
  name: hello
  tasks:
  - name: hello
    image: alpine:3.18
    command: ["sh", "-c", "echo hello {{ who }}"]
`;

/** The plan drawn as the workflow page draws a run: every group waiting, edges from the groups each waits for. */
function planAsRecord(name: string, plan: PlanShape): { record: RunRecord; edges: GroupEdge[] } {
  const record: RunRecord = {
    id: "(dry run)",
    name,
    status: "PENDING",
    submit_time: new Date().toISOString(),
    start_time: null,
    end_time: null,
    groups: plan.groups.map((g) => ({
      name: g.name,
      status: "WAITING",
      start_time: null,
      end_time: null,
      tasks: g.tasks.map((t) => ({
        ...t,
        status: "WAITING",
        exit_code: null,
        retry_id: 0,
        ip: null,
        start_time: null,
        end_time: null,
        reason: null,
      })),
    })),
  };
  const edges = plan.groups.flatMap((g) => g.upstream.map((from) => ({ from, to: g.name })));
  return { record, edges };
}

export function SubmitPage() {
  const [text, setText] = useState(EXAMPLE);
  const [variables, setVariables] = useState("who=world");
  const [pools, setPools] = useState<string[]>(["default"]);
  const [pool, setPool] = useState("default");
  const [diagnostics, setDiagnostics] = useState<ServerDiagnostic[]>([]);
  /** The text the diagnostics were for: marks are placed in it (they go once the text changes much). */
  const [checkedText, setCheckedText] = useState(EXAMPLE);
  const [error, setError] = useState<string | undefined>();
  const [validated, setValidated] = useState<Validated | undefined>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const abort = new AbortController();
    getJson<{ pools: { name: string }[] }>("/api/pool", abort.signal).then(
      (found) => found.pools.length > 0 && setPools(found.pools.map((p) => p.name)),
      () => undefined,
    );
    return () => abort.abort();
  }, []);

  const marks = useMemo(() => marksOf(checkedText, diagnostics), [checkedText, diagnostics]);
  const drawn = useMemo(() => validated?.plan && planAsRecord(validated.name, validated.plan), [validated]);

  const send = async (dryRun: boolean) => {
    const vars = parseVariables(variables);
    setError(undefined);
    setValidated(undefined);
    if (vars.problems.length > 0) return setError(vars.problems.join("; "));
    setBusy(true);
    setCheckedText(text);
    try {
      const body = { spec: text, set: vars.set, dry_run: dryRun };
      const path = `/api/pool/${encodeURIComponent(pool)}/workflow`;
      if (dryRun) {
        const answer = await postJson<Validated>(path, body);
        setDiagnostics(answer.diagnostics ?? []);
        setValidated(answer);
      } else {
        const answer = await postJson<{ id: string }>(path, body);
        navigate(workflowPath(answer.id));
      }
    } catch (caught) {
      const failure = caught as ApiError;
      setDiagnostics(failure.diagnostics ?? []);
      setError(failure.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="submit">
      <h1>Submit a workflow</h1>
      <div className="submit-form">
        <div className="editor-column">
          <span className="field-label" id="spec-label">
            Workflow spec (YAML)
          </span>
          <YamlEditor initial={EXAMPLE} marks={marks} onChange={setText} label="Workflow spec (YAML)" />
        </div>
        <div className="options-column">
          <label>
            Pool
            <select value={pool} onChange={(event) => setPool(event.target.value)}>
              {pools.map((name) => (
                <option key={name}>{name}</option>
              ))}
            </select>
          </label>
          <label>
            Variables (--set), one NAME=VALUE a line
            <textarea rows={5} value={variables} onChange={(event) => setVariables(event.target.value)} spellCheck={false} />
          </label>
          <div className="buttons">
            <button type="button" disabled={busy} onClick={() => void send(true)}>
              Dry run
            </button>
            <button type="button" className="primary" disabled={busy} onClick={() => void send(false)}>
              Submit
            </button>
          </div>
        </div>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {marks.length > 0 && (
        <ul className="diagnostics" aria-label="Problems">
          {marks.map((mark, i) => (
            <li key={i} className={`diagnostic ${mark.severity}`} data-line={mark.line}>
              <strong>
                {mark.severity} at line {mark.line}
              </strong>
              : {mark.message}
            </li>
          ))}
        </ul>
      )}
      {validated && (
        <section aria-label="Plan">
          <p role="status" className="notice">
            Valid: {validated.name}, {validated.groups} groups, {validated.tasks} tasks. Nothing was run.
          </p>
          {drawn && <GroupGraph record={drawn.record} spec={undefined} edges={drawn.edges} />}
        </section>
      )}
    </main>
  );
}
