/**
 * The runtimes troupe knows, in the order an automatic choice tries them
 * (containers when an engine answers and can start them, else the host). A
 * new runtime is one folder under runtime/ and one entry here.
 */
import type { z } from "zod";
import { didYouMean } from "../util/suggest.js";
import type { RuntimeKind } from "./kind.js";
import { containerKind } from "./kinds/container.js";
import { hostKind } from "./kinds/host.js";
import { kubernetesKind } from "./kinds/kubernetes.js";
import { slurmKind } from "./kinds/slurm.js";

export const RUNTIME_KINDS: readonly RuntimeKind[] = [containerKind, hostKind, slurmKind, kubernetesKind];

export function runtimeKind(name: string): RuntimeKind | undefined {
  return RUNTIME_KINDS.find((kind) => kind.name === name);
}

/** The known kinds' names, sorted, for messages. */
export function runtimeKindNames(): string[] {
  return RUNTIME_KINDS.map((kind) => kind.name).sort();
}

/** No runtime of that name: the likely one, and which there are. */
export function unknownRuntimeKind(name: string): string {
  const names = runtimeKindNames();
  const guess = didYouMean(name, names);
  return `no runtime named ${name}${guess ? ` (${guess})` : ""}; the runtimes: ${names.join(", ")}`;
}

/**
 * Every option of every kind, once (a pool's fields for its runtime). An
 * option two kinds share has one meaning: the first kind's schema checks it.
 */
export function runtimeOptionShape(): Record<string, z.ZodType> {
  const shape: Record<string, z.ZodType> = {};
  for (const kind of RUNTIME_KINDS) for (const [field, schema] of Object.entries(kind.options.shape)) shape[field] ??= schema as z.ZodType;
  return shape;
}

/** The kinds that take option `field`. */
export function kindsTaking(field: string): RuntimeKind[] {
  return RUNTIME_KINDS.filter((kind) => field in kind.options.shape);
}
