/**
 * The names and labels troupe gives its Kubernetes objects (deciding only; nothing here talks to a cluster).
 *
 * Every object carries the labels a restarted troupe finds it again by, and a sweep finds what a dead troupe
 * left: `troupe.dev/owner` (the troupe home, runtime/home-identity.ts), `troupe.dev/run`, `troupe.dev/group`,
 * `troupe.dev/task`, `troupe.dev/retry`. Label values hold at most 63 characters of [A-Za-z0-9._-], starting
 * and ending alphanumeric: values that do not fit are shortened with a hash of the whole (labelValue). The
 * exact run id and attempt key go into annotations, which have no such limits.
 *
 * A group's members are reached as OSMO reaches them: each pod's `hostname` (its task's DNS label) under the
 * `subdomain` of its group's headless Service, so `{{host:X}}` is `X.SERVICE.NAMESPACE.svc.CLUSTER-DOMAIN`.
 */
import { createHash } from "node:crypto";
import { nameLabel } from "../member-names.js";

export const LABEL_PREFIX = "troupe.dev";
export const LABELS = {
  owner: `${LABEL_PREFIX}/owner`,
  run: `${LABEL_PREFIX}/run`,
  group: `${LABEL_PREFIX}/group`,
  task: `${LABEL_PREFIX}/task`,
  retry: `${LABEL_PREFIX}/retry`,
} as const;
export const ANNOTATIONS = {
  runId: `${LABEL_PREFIX}/run-id`,
  key: `${LABEL_PREFIX}/attempt-key`,
  group: `${LABEL_PREFIX}/group-name`,
  task: `${LABEL_PREFIX}/task-name`,
} as const;

const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const MAX_LABEL = 63;

function shortHash(text: string, length: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** `value` as a label value: itself when it is one, else its valid characters (cut) and a hash of it. */
export function labelValue(value: string): string {
  if (LABEL_VALUE.test(value)) return value;
  const hash = shortHash(value, 8);
  const kept = value
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .slice(0, MAX_LABEL - 9)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  return kept ? `${kept}-${hash}` : hash;
}

/** A DNS label (RFC 1035: starts with a letter) of at most 63 characters: `base` cut, then `-` and a hash of `unique`. */
function dnsLabel(base: string, unique: string): string {
  const hash = shortHash(unique, 10);
  const cut = base.slice(0, MAX_LABEL - hash.length - 1).replace(/-+$/, "");
  return `${cut}-${hash}`;
}

/** The headless Service of a run's group (a DNS-1035 label, as Service names must be): `GROUP-HASH`. */
export function serviceName(runId: string, groupName: string): string {
  return dnsLabel(nameLabel(groupName), `${runId}\0${groupName}`);
}

/** The pod of one attempt: `TASK-rRETRY-HASH`, unique per run and attempt within a namespace. */
export function podName(runId: string, taskName: string, retryId: number, key: string): string {
  return dnsLabel(`${nameLabel(taskName)}-r${retryId}`, `${runId}\0${key}`);
}

/**
 * The image pull Secret of a run's login to a registry: `pull-HOST-HASH` (the hash of the run, the host and
 * the user: one Secret per login a run uses, never the password's).
 */
export function pullSecretName(runId: string, host: string, username: string): string {
  const readable = host.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return dnsLabel(`pull-${readable}`, `${runId}\0${host}\0${username}`);
}

/** What `{{host:TASK}}` becomes for a member of a group on Kubernetes. */
export function memberHostName(taskName: string, service: string, namespace: string, clusterDomain: string): string {
  return `${nameLabel(taskName)}.${service}.${namespace}.svc.${clusterDomain}`;
}

export interface Owner {
  /** The troupe home that owns the objects (runtime/home-identity.ts). */
  home: string;
  runId: string;
}

/** The labels of everything of a run's group (and the selector of its Service). */
export function groupLabels(owner: Owner, groupName: string): Record<string, string> {
  return {
    [LABELS.owner]: labelValue(owner.home),
    [LABELS.run]: labelValue(owner.runId),
    [LABELS.group]: nameLabel(groupName),
  };
}

/** The labels of one attempt's pod. */
export function attemptLabels(owner: Owner, groupName: string, taskName: string, retryId: number): Record<string, string> {
  return { ...groupLabels(owner, groupName), [LABELS.task]: nameLabel(taskName), [LABELS.retry]: String(retryId) };
}
