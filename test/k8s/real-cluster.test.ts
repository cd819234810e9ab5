/**
 * End to end on a real Kubernetes cluster: `troupe run --runtime kubernetes` of the tutorial's three files
 * (examples/, from /work/shared/seeds' tutorial) and of a group whose client reaches its server through
 * `{{host:server}}`, with real containers pulled from Docker Hub, real logs, real DNS through the group's
 * headless Service. It runs when KUBECONFIG names a cluster with at least one node that is not kwok's
 * (real-cluster.ts), in the namespace TROUPE_K8S_E2E_NAMESPACE names (which must exist) or else one it makes
 * and deletes; it is skipped otherwise, saying why in its title. The test cluster of scripts/k8s/up.sh runs
 * no container, so there it is skipped: the check that says so is tested below against that cluster.
 */
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun, ensureBuilt, random, runJson, taskOf, TestHome, EXAMPLES } from "../run/helpers.js";
import { createNamespace, deleteNamespace, givenCluster, uniqueNamespace } from "./k8s-cluster.js";
import { isKwokNode, realCluster } from "./real-cluster.js";

const testCluster = givenCluster();

describe("the real-cluster check", () => {
  it.skipIf(!testCluster.cluster)("says the test cluster's nodes are kwok's, so the e2e test skips there", async () => {
    const check = await realCluster({ KUBECONFIG: testCluster.cluster!.kubeconfig });
    expect(check.config).toBeUndefined();
    expect(check.reason).toMatch(/has only kwok's simulated nodes \(kwok-node-1, .*\): no container runs there/);
  });

  it("tells kwok's nodes (its annotation, or the kubelet version it reports) from a kubelet's", () => {
    expect(isKwokNode({ metadata: { name: "gpu-1" }, status: { nodeInfo: { kubeletVersion: "v1.33.4" } as never } })).toBe(false);
    expect(isKwokNode({ metadata: { name: "k", annotations: { "kwok.x-k8s.io/node": "fake" } } })).toBe(true);
    expect(isKwokNode({ metadata: { name: "k" }, status: { nodeInfo: { kubeletVersion: "kwok-v0.8.0" } as never } })).toBe(true);
  });

  it("says when KUBECONFIG is not set, or names no kubeconfig", async () => {
    expect((await realCluster({})).reason).toMatch(/KUBECONFIG is not set/);
    expect((await realCluster({ KUBECONFIG: "/nonexistent/kubeconfig" })).reason).toMatch(
      /KUBECONFIG names \/nonexistent\/kubeconfig, which cannot be read as a kubeconfig/,
    );
  });
});

const real = await realCluster();
const timeoutMs = 10 * 60_000;

describe.skipIf(!real.config)(`troupe run on a real Kubernetes cluster ${real.reason ? `(skipped: ${real.reason})` : ""}`, () => {
  const given = process.env.TROUPE_K8S_E2E_NAMESPACE;
  const namespace = given ?? uniqueNamespace("troupe-e2e");
  let home: TestHome;

  beforeAll(async () => {
    await ensureBuilt();
    if (!given) await createNamespace(real.config!, namespace);
    home = new TestHome();
  }, 300_000);
  afterAll(async () => {
    if (!given && real.config) await deleteNamespace(real.config, namespace, 300_000);
    home?.remove();
  }, 320_000);

  /** Runs FILE on the cluster; afterwards no pod of the run may be left. */
  async function runThere(file: string) {
    const run = await runJson(file, {
      home: home.home,
      env: { KUBECONFIG: process.env.KUBECONFIG },
      extra: ["--runtime", "kubernetes", "--namespace", namespace],
      // Image pulls, and the barrier's release reaching the pod (the kubelet refreshes its annotations' volume
      // within its sync period, about a minute).
      timeoutMs,
    });
    const left = await real
      .config!.makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace, labelSelector: `troupe.dev/run=${run.record.id}` });
    expect(left.items.filter((pod) => !pod.metadata?.deletionTimestamp).map((pod) => pod.metadata?.name)).toEqual([]);
    return run;
  }

  it(
    "runs parallel_tasks.yaml: three pods, each task's output in its log",
    async () => {
      const run = await runThere(`${EXAMPLES}/parallel_tasks.yaml`);
      expect(run.record.status, describeRun(run)).toBe("COMPLETED");
      for (const task of ["task-a", "task-b", "task-c"]) expect(home.log(run.record.id, task)).toBe(`Hello from ${task}\n`);
    },
    timeoutMs,
  );

  it(
    "runs group_tasks.yaml: the lead's end ends the group, COMPLETED",
    async () => {
      const run = await runThere(`${EXAMPLES}/group_tasks.yaml`);
      expect(run.record.status, describeRun(run)).toBe("COMPLETED");
      expect(taskOf(run.record, "processor-1")).toMatchObject({ status: "COMPLETED", exit_code: 0 });
      expect(home.log(run.record.id, "processor-1")).toContain("Processor 1: Processing item 5\nProcessor 1: Complete\n");
    },
    timeoutMs,
  );

  it(
    "runs group_tasks_communication.yaml: the client receives the server's hello through {{host:server}}",
    async () => {
      const run = await runThere(`${EXAMPLES}/group_tasks_communication.yaml`);
      expect(run.record.status, describeRun(run)).toBe("COMPLETED");
      expect(home.log(run.record.id, "client")).toContain("Received from server: hello\n");
    },
    timeoutMs,
  );

  it(
    "a group's client reaches its server by {{host:server}} (the Service's DNS name) and gets its answer",
    async () => {
      const file = home.spec(
        "host-pair",
        `workflow:
  name: host-pair-${random()}
  groups:
  - name: pair
    tasks:
    - name: server
      image: alpine:3.18
      command: ["sh", "-c", "echo pong-from-server | nc -l -p 7000; echo served"]
    - name: client
      lead: true
      image: alpine:3.18
      command: ["sh", "-c"]
      args:
      - |
        echo "server is {{host:server}}"
        for i in $(seq 60); do
          if answer=$(nc -w 5 {{host:server}} 7000 </dev/null) && [ -n "$answer" ]; then echo "got $answer"; exit 0; fi
          sleep 1
        done
        echo "no answer from {{host:server}}"; exit 1
`,
      );
      const run = await runThere(file);
      expect(run.record.status, describeRun(run)).toBe("COMPLETED");
      const log = home.log(run.record.id, "client");
      expect(log).toMatch(new RegExp(`^server is server\\.[a-z0-9-]+\\.${namespace}\\.svc\\.`));
      expect(log).toContain("got pong-from-server\n");
    },
    timeoutMs,
  );
});
