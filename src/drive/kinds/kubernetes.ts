/**
 * The Kubernetes runtime's entry: a cluster reached through the user's kubeconfig (KUBECONFIG, else
 * ~/.kube/config, or `kubeconfig:`), at a context and in a namespace. The check reads the nodes (their
 * allocatable resources are the pool's capacity); an API server that cannot be reached or refuses is said so.
 */
import { z } from "zod";
import { TroupeError } from "../../errors/index.js";
import {
  BARRIER_HOLDERS,
  contextNamespace,
  GANG_SCHEDULERS,
  KubernetesPool,
  listNodes,
  loadKubeConfig,
  nodesCapacity,
  type NodeCapacity,
} from "../../runtime/index.js";
import { defineRuntimeKind } from "../kind.js";
import type { KubeConfig } from "@kubernetes/client-node";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ANNOTATION = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?=/;

/** `KEY=VALUE` words (a flag given several times) or a mapping (a pool's YAML). */
const annotations = z
  .union([z.record(z.string(), z.string()), z.array(z.string().regex(ANNOTATION, "KEY=VALUE, KEY an annotation key"))])
  .transform((given) =>
    Array.isArray(given)
      ? Object.fromEntries(given.map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]))
      : given,
  );

const KubernetesOptions = z.object({
  namespace: z.string().regex(DNS_LABEL, "a namespace name: lower case letters, digits and '-', at most 63").optional(),
  context: z.string().min(1).optional(),
  kubeconfig: z
    .string()
    .refine((file) => file.startsWith("/"), "an absolute path")
    .optional(),
  /** Annotations every pod gets (a pod template's). */
  pod_annotations: annotations.optional(),
  /** Whose PodGroups make a group of several members one gang (all placed or none). */
  gang_scheduler: z.enum(GANG_SCHEDULERS).optional(),
  /** The queue of volcano's and KAI's PodGroups. */
  gang_queue: z.string().regex(DNS_LABEL, "a queue name: lower case letters, digits and '-', at most 63").optional(),
  /** The scheduler that places the pods (e.g. the one running scheduler-plugins' coscheduling); the cluster's default otherwise. */
  scheduler_name: z.string().regex(DNS_LABEL, "a scheduler name: lower case letters, digits and '-', at most 63").optional(),
  /** What holds a pod's command at the barrier: troupe-init from a ConfigMap (any image), or the image's shell. */
  barrier_holder: z.enum(BARRIER_HOLDERS).optional(),
});

interface Cluster {
  config: KubeConfig;
  capacity: NodeCapacity;
}

function unavailable(message: string, hint?: string): { ok: false; error: TroupeError; why: string } {
  return { ok: false, error: new TroupeError("E_K8S_UNAVAILABLE", `the kubernetes runtime: ${message}`, "usage", hint), why: message };
}

export const kubernetesKind = defineRuntimeKind({
  name: "kubernetes",
  summary: "a Kubernetes cluster: one pod per task, placed by the cluster's scheduler",
  options: KubernetesOptions,
  impliedBy: ["namespace", "context", "kubeconfig", "pod_annotations", "gang_scheduler", "gang_queue", "scheduler_name", "barrier_holder"],
  automatic: false,
  async check(options) {
    let config: KubeConfig;
    try {
      config = loadKubeConfig(options.kubeconfig, options.context);
    } catch (error) {
      return unavailable((error as Error).message.replace(/^the kubernetes runtime: /, ""), (error as TroupeError).hint);
    }
    try {
      const nodes = await listNodes(config);
      if (nodes.length === 0) return unavailable(`the cluster at ${config.getCurrentCluster()!.server} has no nodes`);
      return { ok: true, ready: { config, capacity: nodesCapacity(nodes) } satisfies Cluster };
    } catch (error) {
      const code = (error as { code?: number }).code;
      const why =
        code === 401
          ? "401: the kubeconfig's credentials were refused"
          : code === 403
            ? "403: the user may not list nodes"
            : (error as Error).message;
      return unavailable(
        `cannot read the nodes of ${config.getCurrentCluster()!.server}: ${why}`,
        "check that `kubectl get nodes` works with this kubeconfig and context",
      );
    }
  },
  capacity: ({ capacity }) => capacity,
  create(options, { config }, { home }) {
    return new KubernetesPool({
      config,
      home,
      namespace: options.namespace ?? contextNamespace(config),
      context: options.context,
      podAnnotations: options.pod_annotations,
      gangScheduler: options.gang_scheduler,
      gangQueue: options.gang_queue,
      schedulerName: options.scheduler_name,
      barrierHolder: options.barrier_holder,
    });
  },
});
