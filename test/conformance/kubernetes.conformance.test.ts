/**
 * The runtime port's conformance suite (port.conformance.ts) against the Kubernetes runtime on the test cluster
 * (scripts/k8s/up.sh: a real API server, scheduler and controller manager; kwok plays the kubelets), in a
 * namespace of its own. kwok runs no container: the cases about what a command does (its output, exit code,
 * signals, files, network) skip themselves saying so; the cases about placement, the barrier's hold and
 * stopping members in each state run for real. Skipped, saying why, when no test cluster is up.
 */
import { afterAll, beforeAll, describe } from "vitest";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "../k8s/k8s-cluster.js";
import { BACKENDS } from "./backends.js";
import { describeConformance } from "./port.conformance.js";

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/conformance/kubernetes.conformance.test.ts skipped: ${attempt.reason}`);
const namespace = uniqueNamespace("troupe-conf");
// The dead-session child makes the same pool: it finds the namespace here.
process.env.TROUPE_CONFORMANCE_K8S_NAMESPACE ??= namespace;

describe.skipIf(!attempt.cluster)(`kubernetes runtime (${attempt.reason ?? "the test cluster"})`, () => {
  const config = attempt.cluster && kubeConfigFrom(attempt.cluster.kubeconfig);

  beforeAll(async () => {
    await createNamespace(config!, namespace);
  }, 60_000);
  afterAll(() => deleteNamespace(config!, namespace), 90_000);

  describeConformance({
    name: "kubernetes, a pod per member (kwok's simulated nodes)",
    backend: "kubernetes",
    make: () => BACKENDS.kubernetes(),
    image: "alpine:3.20",
    cannot: {
      commands:
        "the test cluster's nodes are kwok's: no container runs, so no command's output, exit code, signals, files or network (pods end as the test cluster's troupe.test/* annotations say; test/k8s/ covers those through them)",
    },
  });
});
