/**
 * Whether the environment names a real Kubernetes cluster, for the end-to-end test (real-cluster.test.ts): the
 * cluster of KUBECONFIG (as the issue has it: what a user's `kubectl` would use) when at least one of its nodes
 * is not kwok's. The test cluster of scripts/k8s/up.sh (kwok's simulated nodes) runs no container, so a run
 * there would show nothing the e2e test is for; it is told apart by its nodes, not by its address.
 */
import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";

export type RealClusterAttempt = { config: KubeConfig; server: string; reason?: undefined } | { config?: undefined; reason: string };

/** How long listing the nodes may take before the cluster is taken as unreachable. */
const LIST_NODES_MS = 15_000;

/** A node that kwok plays: its annotation (kwok's own convention) or the kubelet version kwok reports. */
export function isKwokNode(node: V1Node): boolean {
  return node.metadata?.annotations?.["kwok.x-k8s.io/node"] === "fake" || (node.status?.nodeInfo?.kubeletVersion ?? "").startsWith("kwok");
}

/** The real cluster KUBECONFIG names, or why there is none (for the skipped test's title). */
export async function realCluster(env: NodeJS.ProcessEnv = process.env): Promise<RealClusterAttempt> {
  const file = env.KUBECONFIG;
  if (!file) return { reason: "KUBECONFIG is not set: the end-to-end test runs on the real cluster it names" };
  const config = new KubeConfig();
  try {
    config.loadFromFile(file);
  } catch (error) {
    return { reason: `KUBECONFIG names ${file}, which cannot be read as a kubeconfig: ${(error as Error).message}` };
  }
  const server = config.getCurrentCluster()?.server ?? "?";
  let nodes: V1Node[];
  try {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${LIST_NODES_MS / 1000} s`)), LIST_NODES_MS);
    });
    nodes = (await Promise.race([config.makeApiClient(CoreV1Api).listNode(), timeout]).finally(() => clearTimeout(timer))).items;
  } catch (error) {
    const e = error as { code?: number; message?: string };
    return {
      reason: `the nodes of KUBECONFIG's cluster (${server}) cannot be listed: ${e.code ? `HTTP ${e.code}` : (e.message ?? String(error))}`,
    };
  }
  if (nodes.length === 0) return { reason: `KUBECONFIG's cluster (${server}) has no nodes` };
  if (nodes.every(isKwokNode)) {
    const names = nodes.map((n) => n.metadata?.name ?? "?").join(", ");
    return { reason: `KUBECONFIG's cluster (${server}) has only kwok's simulated nodes (${names}): no container runs there` };
  }
  return { config, server };
}
