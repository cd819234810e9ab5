/**
 * How a group's job will ask Slurm for its members, said in words (`troupe
 * plan`), and why it never could run on the partition's nodes: more members
 * than nodes when each must have a node of its own (`spread: nodes`, for
 * members that listen on one port), or a member larger than every node.
 * Sbatch would accept the first and leave it pending for ever; troupe refuses
 * both before anything is submitted. Decisions only.
 */
import { isHeterogeneous, shapeOf, type MemberShape, type Spread } from "./batch-script.js";
import type { SlurmNode } from "./slurm-commands.js";

export interface GroupJob {
  /** The job, in words: how many tasks, on which nodes, of what size. */
  how: string;
  /** Why Slurm could never run it on these nodes, or undefined. */
  refusal?: string;
}

const size = (shape: MemberShape) =>
  [
    `${shape.cpus} CPU${shape.cpus === 1 ? "" : "s"}`,
    ...(shape.memoryMb > 0 ? [`${shape.memoryMb} MB`] : []),
    ...(shape.gpus > 0 ? [`${shape.gpus} GPU${shape.gpus === 1 ? "" : "s"}`] : []),
  ].join(", ");

/** The job of a group whose members ask for `resources` (one entry per member), on `nodes`. */
export function groupJob(
  resources: ReadonlyArray<{ cpu: number; gpu: number; memoryBytes: number } | undefined>,
  spread: Spread,
  nodes: readonly SlurmNode[],
  partition?: string,
): GroupJob {
  return jobOfShapes(resources.map(shapeOf), spread, nodes, partition);
}

export function jobOfShapes(shapes: readonly MemberShape[], spread: Spread, nodes: readonly SlurmNode[], partition?: string): GroupJob {
  const where = partition ? `partition ${partition}` : "the cluster";
  const count = shapes.length;
  const how = isHeterogeneous(shapes)
    ? `a heterogeneous job of ${count} components (${shapes.map(size).join("; ")}), placed by Slurm`
    : count === 1
      ? `one job, one task of ${size(shapes[0]!)}`
      : spread === "nodes"
        ? `one job, ${count} task${count === 1 ? "" : "s"} on ${count} distinct node${count === 1 ? "" : "s"}, ${size(shapes[0]!)} each`
        : `one job, ${count} task${count === 1 ? "" : "s"} of ${size(shapes[0]!)}, packed on nodes as Slurm places them`;
  if (spread === "nodes" && !isHeterogeneous(shapes) && count > nodes.length)
    return {
      how,
      refusal: `spread: nodes puts each of the ${count} members on a node of its own, and ${where} has ${nodes.length} node${nodes.length === 1 ? "" : "s"} (use spread: pack, or fewer members)`,
    };
  const fitsOn = (shape: MemberShape, node: SlurmNode) =>
    shape.cpus <= node.cpus && shape.memoryMb <= node.memoryMb && shape.gpus <= node.gpus;
  const tooLarge = shapes.find((shape) => !nodes.some((node) => fitsOn(shape, node)));
  if (tooLarge) {
    const largest = { cpus: Math.max(0, ...nodes.map((n) => n.cpus)), memoryMb: Math.max(0, ...nodes.map((n) => n.memoryMb)) };
    const gpus = Math.max(0, ...nodes.map((n) => n.gpus));
    return {
      how,
      refusal: `a member asks for ${size(tooLarge)} on one node, and no node of ${where} has that much (at most ${largest.cpus} CPUs, ${largest.memoryMb} MB, ${gpus} GPUs a node)`,
    };
  }
  return { how };
}
