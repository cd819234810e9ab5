/**
 * What the kubernetes runtime reads of a cluster (src/runtime/kubernetes/cluster-facts.ts): quantities as
 * Kubernetes writes them, the pool's capacity from the real test cluster's nodes (scripts/k8s/up.sh: each
 * kwok node 8 cpu, 32Gi, 4 nvidia.com/gpu), and kubeconfig problems said as usage errors.
 */
import { describe, expect, it } from "vitest";
import { TroupeError } from "../../src/errors/index.js";
import { listNodes, loadKubeConfig, nodesCapacity, parseQuantity } from "../../src/runtime/kubernetes/index.js";
import { givenCluster } from "./k8s-cluster.js";

describe("quantities", () => {
  it("reads decimal and binary suffixes, millicores and exponents, and refuses anything else", () => {
    expect(parseQuantity("7500m")).toBe(7.5);
    expect(parseQuantity("32Gi")).toBe(32 * 2 ** 30);
    expect(parseQuantity("1000Ki")).toBe(1_024_000);
    expect(parseQuantity("2G")).toBe(2e9);
    expect(parseQuantity("1e3")).toBe(1000);
    expect(parseQuantity("4")).toBe(4);
    expect(() => parseQuantity("4 cores")).toThrow(/"4 cores" is not a Kubernetes quantity/);
  });
});

describe("kubeconfigs", () => {
  it("refuses a kubeconfig file that is not there, naming it", () => {
    expect(() => loadKubeConfig("/nonexistent/kubeconfig")).toThrow(TroupeError);
    expect(() => loadKubeConfig("/nonexistent/kubeconfig")).toThrow(/cannot read the kubeconfig \/nonexistent\/kubeconfig/);
  });
});

const attempt = givenCluster();
describe.skipIf(!attempt.cluster)(`the test cluster's capacity ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`, () => {
  it("is the sum of the schedulable nodes' allocatable resources", async () => {
    const config = loadKubeConfig(attempt.cluster!.kubeconfig);
    const nodes = (await listNodes(config)).filter((node) => node.metadata?.labels?.type === "kwok" && !node.spec?.unschedulable);
    const n = nodes.length;
    expect(n).toBeGreaterThanOrEqual(attempt.cluster!.nodes);
    // Every kwok node up.sh makes has 8 cpu, 32Gi and 4 GPUs (tests' own nodes may add more of the same).
    const capacity = nodesCapacity(nodes);
    expect(capacity.cpu).toBe(8 * n);
    expect(capacity.gpu).toBe(4 * n);
    expect(capacity.memoryBytes).toBe(32 * 2 ** 30 * n);
    expect(nodesCapacity([{ spec: { unschedulable: true }, status: { allocatable: { cpu: "8" } } }])).toEqual({
      cpu: 0,
      gpu: 0,
      memoryBytes: 0,
    });
  });
});
