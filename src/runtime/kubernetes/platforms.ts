/**
 * Where a pod may run, as OSMO's pools say it (deciding only): the pool's node selector, tolerations, priority
 * class and pod template, then those of the platform the task's resource names (`platform:`, else the pool's
 * default platform), then the task's own `nodesExcluded` (a node affinity that keeps the pod off those
 * nodes) and `storage` (ephemeral-storage, requested and limited).
 *
 * A pod template is a partial pod, as a cluster administrator writes one: its labels, annotations and spec
 * fields are added to troupe's pod, its one container merged into the task's. troupe's own fields win
 * (command, restart policy, names, its labels and volumes); lists (tolerations, volumes, env) are joined,
 * mappings (node selectors, resources) merged. The API server judges the result.
 */
import type { V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod, V1Toleration } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import type { MemberRef } from "../../port/index.js";

/** A partial pod: what a template may add. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** Where a platform's pods go, and what they carry. */
export interface PlatformSettings {
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  priorityClassName?: string;
  podTemplate?: PodTemplate;
}

export interface PlacementSettings {
  /** The pool's own pod template, under every platform's. */
  podTemplate?: PodTemplate;
  /** The pool's platforms, by name. */
  platforms?: Record<string, PlatformSettings>;
  /** The platform of a task whose resource names none. */
  defaultPlatform?: string;
}

const HOSTNAME_LABEL = "kubernetes.io/hostname";

/** The platform member `ref` runs on (its own, else the pool's default), or undefined where the pool has none. */
export function platformOf(ref: Pick<MemberRef, "platform" | "taskName">, settings: PlacementSettings): PlatformSettings | undefined {
  const name = ref.platform ?? settings.defaultPlatform;
  if (name === undefined) return undefined;
  const platform = settings.platforms?.[name];
  if (!platform)
    throw new TroupeError(
      "E_K8S_PLATFORM",
      `task ${ref.taskName}: the pool has no platform "${name}" (it has: ${Object.keys(settings.platforms ?? {}).join(", ") || "none"})`,
      "usage",
    );
  return platform;
}

/** Applies the platform, the templates, `nodesExcluded` and `storage` of member `ref` to its pod (changed in place). */
export function placePod(pod: V1Pod, ref: MemberRef, settings: PlacementSettings): V1Pod {
  const platform = platformOf(ref, settings);
  const spec = pod.spec!;
  if (platform?.nodeSelector) spec.nodeSelector = { ...spec.nodeSelector, ...platform.nodeSelector };
  if (platform?.tolerations) spec.tolerations = [...(spec.tolerations ?? []), ...platform.tolerations.map((t) => ({ ...t }))];
  if (platform?.priorityClassName) spec.priorityClassName = platform.priorityClassName;
  // The platform's template first: what it says is closer to the task than the pool's.
  for (const template of [platform?.podTemplate, settings.podTemplate]) if (template) applyTemplate(pod, template);
  if (ref.nodesExcluded && ref.nodesExcluded.length > 0) excludeNodes(pod, ref.nodesExcluded);
  const storage = ref.resources?.storageBytes ?? 0;
  if (storage > 0) {
    // pod.spec, not `spec`: a template made a new one.
    const container = pod.spec!.containers[0]!;
    const amount = String(Math.ceil(storage));
    container.resources = {
      requests: { ...container.resources?.requests, "ephemeral-storage": amount },
      limits: { ...container.resources?.limits, "ephemeral-storage": amount },
    };
  }
  return pod;
}

/** Keeps the pod off `nodes` (by hostname): ANDed into every required node selector term there is, or the only one. */
function excludeNodes(pod: V1Pod, nodes: readonly string[]): void {
  const requirement: V1NodeSelectorRequirement = { key: HOSTNAME_LABEL, operator: "NotIn", values: [...nodes] };
  const spec = pod.spec!;
  const affinity = (spec.affinity ??= {});
  const nodeAffinity = (affinity.nodeAffinity ??= {});
  const required = (nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution ??= { nodeSelectorTerms: [] });
  const terms: V1NodeSelectorTerm[] = required.nodeSelectorTerms.length > 0 ? required.nodeSelectorTerms : [{}];
  required.nodeSelectorTerms = terms.map((term) => ({ ...term, matchExpressions: [...(term.matchExpressions ?? []), requirement] }));
}

type Plain = Record<string, unknown>;
const isPlain = (value: unknown): value is Plain => typeof value === "object" && value !== null && !Array.isArray(value);

/** `ours` with what `template` adds: our scalars win, mappings merge, lists join (the template's first). */
function underlay(ours: Plain, template: Plain): Plain {
  const merged: Plain = { ...ours };
  for (const [key, value] of Object.entries(template)) {
    const mine = ours[key];
    if (mine === undefined) merged[key] = structuredClone(value);
    else if (Array.isArray(mine) && Array.isArray(value)) merged[key] = [...(structuredClone(value) as unknown[]), ...mine];
    else if (isPlain(mine) && isPlain(value)) merged[key] = underlay(mine, value);
  }
  return merged;
}

function applyTemplate(pod: V1Pod, template: PodTemplate): void {
  const metadata = pod.metadata!;
  metadata.labels = { ...template.metadata?.labels, ...metadata.labels };
  metadata.annotations = { ...template.metadata?.annotations, ...metadata.annotations };
  const { containers, ...rest } = template.spec ?? {};
  const spec = underlay(pod.spec as unknown as Plain, rest) as unknown as NonNullable<V1Pod["spec"]>;
  const [container] = (containers as Plain[] | undefined) ?? [];
  if (container) {
    // The template's container is the task's: its name and image are troupe's.
    const { name: _name, image: _image, ...fields } = container;
    spec.containers = [underlay(spec.containers[0] as unknown as Plain, fields) as never, ...spec.containers.slice(1)];
  }
  pod.spec = spec;
}

/** Refuses a pod template troupe could not apply as written, naming where it is. */
export function checkPodTemplate(template: unknown, where: string): PodTemplate {
  const bad = (what: string): never => {
    throw new TroupeError("E_K8S_SETTINGS", `${where}: ${what}`, "usage");
  };
  if (!isPlain(template)) return bad("a pod template is a mapping (metadata:, spec:)");
  for (const key of Object.keys(template))
    if (key !== "metadata" && key !== "spec" && key !== "apiVersion" && key !== "kind")
      bad(`a pod template has metadata: and spec:, not ${key}:`);
  const metadata = template.metadata;
  if (metadata !== undefined) {
    if (!isPlain(metadata)) bad("metadata: is a mapping");
    for (const key of Object.keys(metadata as Plain))
      if (key !== "labels" && key !== "annotations") bad(`metadata: a pod template may set labels and annotations, not ${key}`);
  }
  const spec = template.spec;
  if (spec !== undefined) {
    if (!isPlain(spec)) bad("spec: is a mapping");
    const containers = (spec as Plain).containers;
    if (containers !== undefined && (!Array.isArray(containers) || containers.length > 1 || !isPlain(containers[0])))
      bad("spec.containers: one container at most (merged into the task's)");
    for (const key of ["command", "args"])
      if (Array.isArray(containers) && isPlain(containers[0]) && containers[0][key] !== undefined)
        bad(`spec.containers[0].${key} is the task's (troupe sets it)`);
    for (const key of ["restartPolicy", "hostname", "subdomain", "hostNetwork"])
      if ((spec as Plain)[key] !== undefined) bad(`spec.${key} is troupe's to set`);
  }
  return template as PodTemplate;
}
