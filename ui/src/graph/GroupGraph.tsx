/**
 * The group graph: each group a node listing its tasks (the lead marked), in
 * its status's colour; an edge where a group takes another's output as input.
 * Only the nodes in view are drawn; a workflow of more than GRAPH_LIMIT groups
 * is summarised by status instead (GraphSummary).
 */
import { Background, Controls, Handle, MarkerType, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useEffect, useMemo, useState } from "react";
import type { GroupRecord, RunRecord } from "../../../src/model/index.js";
import { toneOf } from "../status";
import type { GroupEdge } from "./edges";
import { readGroupEdges } from "./edges-off-thread";
import { GRAPH_LIMIT, GraphSummary } from "./GraphSummary";
import { layoutGroups, NODE_WIDTH, nodeHeight, TASKS_SHOWN } from "./layout";

/** Not "group": React Flow styles its own node type of that name. */
type GroupNode = Node<{ group: GroupRecord }, "workflowGroup">;

function GroupBox({ data }: NodeProps<GroupNode>) {
  const { group } = data;
  const shown = group.tasks.slice(0, TASKS_SHOWN);
  return (
    <div className={`group-node tone-${toneOf(group.status)}`} style={{ width: NODE_WIDTH }} data-group={group.name}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="group-head">
        <strong>{group.name}</strong>
        <span className="group-status">{group.status}</span>
      </div>
      <ul>
        {shown.map((task) => (
          <li key={task.name} className={`tone-${toneOf(task.status)}`} title={`${task.name}: ${task.status}`}>
            <span className="dot" aria-hidden="true" />
            {task.name}
            {task.lead && group.tasks.length > 1 && <span className="lead-mark"> ★ lead</span>}
          </li>
        ))}
        {group.tasks.length > TASKS_SHOWN && <li className="more">+{group.tasks.length - TASKS_SHOWN} more</li>}
      </ul>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

const nodeTypes = { workflowGroup: GroupBox };
/** From this many groups on, only the nodes and edges in view are drawn (and drawn again as the view moves). */
const ONLY_VISIBLE_FROM = 100;

/** The edges come from the spec's task inputs, or are given (a dry run's plan). */
export function GroupGraph(props: { record: RunRecord; spec: string | undefined; edges?: GroupEdge[] }) {
  return props.record.groups.length > GRAPH_LIMIT ? <GraphSummary record={props.record} /> : <DrawnGraph {...props} />;
}

function DrawnGraph({ record, spec, edges: given }: { record: RunRecord; spec: string | undefined; edges?: GroupEdge[] }) {
  // The edges depend on the spec and the groups, not on statuses: the spec is not read again at every change.
  const groupNames = record.groups.map((g) => g.name).join("\0");
  const [readEdges, setReadEdges] = useState<{ spec: string; edges: GroupEdge[]; error?: string } | undefined>();
  useEffect(() => {
    if (given !== undefined || spec === undefined) return;
    let current = true;
    readGroupEdges(record, spec).then(
      (edges) => current && setReadEdges({ spec, edges }),
      // Drawn without edges, saying why, rather than not at all.
      (error: Error) => current && setReadEdges({ spec, edges: [], error: error.message }),
    );
    return () => {
      current = false;
    };
    // `groupNames` stands for the record's groups (a run's tasks stay in their groups).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [groupNames, spec, given]);
  const edges = given ?? (readEdges !== undefined && readEdges.spec === spec ? readEdges.edges : undefined);
  // The layout depends on the groups and edges only, not on statuses: not redone at every change.
  const shape = useMemo(
    () => JSON.stringify({ groups: record.groups.map((g) => [g.name, g.tasks.length]), edges }),
    [record.groups, edges],
  );
  const [positions, setPositions] = useState<Map<string, { x: number; y: number }> | undefined>();
  const [layoutError, setLayoutError] = useState<string | undefined>();

  useEffect(() => {
    if (edges === undefined) return;
    let current = true;
    const { groups } = JSON.parse(shape) as { groups: [string, number][] };
    layoutGroups(
      groups.map(([name, tasks]) => ({ name, tasks })),
      edges,
    ).then(
      (laid) => current && setPositions(laid),
      (error: Error) => current && setLayoutError(error.message),
    );
    return () => {
      current = false;
    };
    // `shape` stands for the groups and edges.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  if (layoutError) return <p className="error">The graph could not be laid out: {layoutError}</p>;
  if (!positions || !edges) return <div className="graph">Laying out the graph…</div>;
  const nodes: GroupNode[] = record.groups.map((group) => ({
    id: group.name,
    type: "workflowGroup",
    position: positions.get(group.name) ?? { x: 0, y: 0 },
    data: { group },
    draggable: false,
    connectable: false,
    width: NODE_WIDTH,
    height: nodeHeight(group.tasks.length),
    // Given, not left to React Flow to measure: each record is new node objects, and a node React Flow has not
    // measured is hidden until its size changes, which a status change does not do.
    measured: { width: NODE_WIDTH, height: nodeHeight(group.tasks.length) },
  }));
  const statusOf = new Map(record.groups.map((g) => [g.name, g.status]));
  const flowEdges: Edge[] = edges.map((e) => ({
    id: `${e.from}->${e.to}`,
    source: e.from,
    target: e.to,
    markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18 },
    animated: toneOf(statusOf.get(e.to) ?? "") === "waiting",
  }));
  return (
    <div
      className="graph"
      role="figure"
      aria-label={`Group graph of ${record.name}: ${record.groups.length} groups, ${edges.length} edges`}
    >
      {readEdges?.error && <p className="error">The spec's inputs could not be read for the edges: {readEdges.error}</p>}
      <ReactFlow
        nodes={nodes}
        edges={flowEdges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ maxZoom: 1 }}
        maxZoom={2}
        minZoom={0.1}
        nodesConnectable={false}
        nodesDraggable={false}
        onlyRenderVisibleElements={record.groups.length > ONLY_VISIBLE_FROM}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
