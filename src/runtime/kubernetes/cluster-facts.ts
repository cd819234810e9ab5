/**
 * What troupe learns of a Kubernetes cluster before a run (deciding only, with one read): the nodes'
 * allocatable resources as the pool's capacity, so that a group that can never fit is refused at plan time.
 */
import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import { trustExtraCaCerts } from "../../util/extra-ca.js";
import { DEFAULT_GPU_RESOURCE } from "./objects.js";

const SUFFIXES: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity ("7500m", "32Gi", "1e3") as a number; throws on anything else. */
export function parseQuantity(quantity: string): number {
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$/.exec(quantity.trim());
  if (!m || Number.isNaN(Number(m[1]))) throw new Error(`"${quantity}" is not a Kubernetes quantity`);
  return Number(m[1]) * SUFFIXES[m[2]!]!;
}

export interface NodeCapacity {
  cpu: number;
  gpu: number;
  memoryBytes: number;
}

/** The sum of the schedulable nodes' allocatable cpu, memory and GPUs (`gpuResource`). */
export function nodesCapacity(nodes: readonly V1Node[], gpuResource = DEFAULT_GPU_RESOURCE): NodeCapacity {
  const total: NodeCapacity = { cpu: 0, gpu: 0, memoryBytes: 0 };
  for (const node of nodes) {
    if (node.spec?.unschedulable) continue;
    const allocatable = node.status?.allocatable ?? {};
    total.cpu += allocatable.cpu ? parseQuantity(allocatable.cpu) : 0;
    total.memoryBytes += allocatable.memory ? parseQuantity(allocatable.memory) : 0;
    total.gpu += allocatable[gpuResource] ? parseQuantity(allocatable[gpuResource]) : 0;
  }
  return total;
}

/**
 * The user's kubeconfig as kubectl finds it (`file`, else KUBECONFIG, else ~/.kube/config, else the pod's
 * service account in a cluster), at `context` when given; a usage error naming what is wrong otherwise.
 */
export function loadKubeConfig(file?: string, context?: string): KubeConfig {
  trustExtraCaCerts();
  const config = new KubeConfig();
  try {
    if (file) config.loadFromFile(file);
    else config.loadFromDefault();
  } catch (error) {
    throw new TroupeError(
      "E_K8S_KUBECONFIG",
      `the kubernetes runtime: cannot read the kubeconfig${file ? ` ${file}` : ""}: ${(error as Error).message}`,
      "usage",
    );
  }
  if (context !== undefined) {
    if (!config.getContexts().some((c) => c.name === context))
      throw new TroupeError(
        "E_K8S_CONTEXT",
        `the kubernetes runtime: no context "${context}" in the kubeconfig (it has: ${
          config
            .getContexts()
            .map((c) => c.name)
            .join(", ") || "none"
        })`,
        "usage",
      );
    config.setCurrentContext(context);
  }
  if (!config.getCurrentCluster())
    throw new TroupeError(
      "E_K8S_KUBECONFIG",
      "the kubernetes runtime: no cluster in the kubeconfig (KUBECONFIG or ~/.kube/config)",
      "usage",
      "point KUBECONFIG at the cluster's kubeconfig, or give --context",
    );
  return config;
}

/** The namespace a context names, or "default". */
export function contextNamespace(config: KubeConfig): string {
  return config.getContextObject(config.getCurrentContext())?.namespace ?? "default";
}

/** The cluster's nodes (one list call): fails with the API server's answer. */
export async function listNodes(config: KubeConfig): Promise<V1Node[]> {
  return (await config.makeApiClient(CoreV1Api).listNode()).items;
}
