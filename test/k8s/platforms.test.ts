/**
 * Where a pod may run (src/runtime/kubernetes/platforms.ts): the pool's and its platform's node selectors,
 * tolerations, priority class and pod templates, a task's `nodesExcluded` and `storage`. First as data (how
 * they merge, what is refused), then with `troupe run --runtime kubernetes` on the test cluster: the real
 * scheduler places the pod only where the pool and the task allow, and the API server admits what the template
 * added. (`storage` is checked as data only: kwok's nodes have no ephemeral-storage, so the scheduler would
 * never place a pod that asks for some.)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TroupeError } from "../../src/errors/index.js";
import type { MemberRef } from "../../src/port/index.js";
import { ANNOTATIONS, checkPodTemplate, placePod } from "../../src/runtime/kubernetes/index.js";
import { kubernetesKind } from "../../src/drive/kinds/kubernetes.js";
import { ensureBuilt, troupe } from "../run/helpers.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";

const basePod = (): V1Pod => ({
  metadata: { name: "p", labels: { "troupe.dev/run": "r" }, annotations: {} },
  spec: {
    restartPolicy: "Never",
    nodeSelector: { pool: "gpu" },
    tolerations: [{ key: "pool", operator: "Exists" }],
    containers: [{ name: "task", image: "alpine", command: ["/bin/sh", "-c", "holder"], resources: { requests: { cpu: "1" } } }],
  },
});
const member = (more: Partial<MemberRef> = {}): MemberRef => ({ key: "g/t/0", taskName: "t", retryId: 0, ...more });

describe("a pod's placement settings", () => {
  it("adds the platform's node selector, tolerations and priority class to the pool's", () => {
    const platforms = {
      a100: { nodeSelector: { gpu: "a100" }, tolerations: [{ key: "a100", operator: "Exists" as const }], priorityClassName: "hi" },
    };
    const pod = placePod(basePod(), member({ platform: "a100" }), { platforms });
    expect(pod.spec!.nodeSelector).toEqual({ pool: "gpu", gpu: "a100" });
    expect(pod.spec!.tolerations).toEqual([
      { key: "pool", operator: "Exists" },
      { key: "a100", operator: "Exists" },
    ]);
    expect(pod.spec!.priorityClassName).toBe("hi");
    // The default platform where the task names none.
    expect(placePod(basePod(), member(), { platforms, defaultPlatform: "a100" }).spec!.nodeSelector).toEqual({ pool: "gpu", gpu: "a100" });
    expect(placePod(basePod(), member(), { platforms }).spec!.nodeSelector).toEqual({ pool: "gpu" });
  });

  it("refuses a platform the pool does not have, naming the task and the pool's platforms", () => {
    const place = () => placePod(basePod(), member({ platform: "h100" }), { platforms: { a100: {} } });
    expect(place).toThrow(TroupeError);
    expect(place).toThrow('task t: the pool has no platform "h100" (it has: a100)');
  });

  it("makes the pod over its templates: troupe's fields win, lists join, mappings merge, the container is the task's", () => {
    const template = checkPodTemplate(
      {
        metadata: { labels: { team: "a", "troupe.dev/run": "theirs" }, annotations: { note: "x" } },
        spec: {
          restartPolicy: undefined,
          runtimeClassName: "nvidia",
          tolerations: [{ key: "t", operator: "Exists" }],
          nodeSelector: { zone: "z1", pool: "theirs" },
          containers: [{ name: "ignored", image: "ignored", resources: { limits: { "example.com/nic": "1" } } }],
        },
      },
      "test",
    );
    const pod = placePod(basePod(), member(), { podTemplate: template });
    expect(pod.metadata!.labels).toEqual({ team: "a", "troupe.dev/run": "r" });
    expect(pod.metadata!.annotations).toEqual({ note: "x" });
    expect(pod.spec!.runtimeClassName).toBe("nvidia");
    expect(pod.spec!.nodeSelector).toEqual({ zone: "z1", pool: "gpu" });
    expect(pod.spec!.tolerations).toEqual([
      { key: "t", operator: "Exists" },
      { key: "pool", operator: "Exists" },
    ]);
    const container = pod.spec!.containers[0]!;
    expect([container.name, container.image, container.command]).toEqual(["task", "alpine", ["/bin/sh", "-c", "holder"]]);
    expect(container.resources).toEqual({ requests: { cpu: "1" }, limits: { "example.com/nic": "1" } });
  });

  it("keeps a pod off the task's excluded nodes, in every node selector term there is", () => {
    const excluded = { key: "kubernetes.io/hostname", operator: "NotIn", values: ["n1", "n2"] };
    const pod = placePod(basePod(), member({ nodesExcluded: ["n1", "n2"] }), {});
    expect(pod.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [excluded] },
    ]);
    const zones = { key: "zone", operator: "In", values: ["z1"] };
    const racks = { key: "rack", operator: "In", values: ["r1"] };
    const template = checkPodTemplate(
      {
        spec: {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [zones] }, { matchExpressions: [racks] }],
              },
            },
          },
        },
      },
      "test",
    );
    const both = placePod(basePod(), member({ nodesExcluded: ["n1", "n2"] }), { podTemplate: template });
    expect(both.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [zones, excluded] },
      { matchExpressions: [racks, excluded] },
    ]);
  });

  it("gives storage and excluded nodes to a pod made over a template too", () => {
    const template = checkPodTemplate({ spec: { containers: [{ securityContext: { runAsNonRoot: true } }] } }, "test");
    const pod = placePod(basePod(), member({ nodesExcluded: ["n1"], resources: { cpu: 1, gpu: 0, memoryBytes: 0, storageBytes: 1000 } }), {
      podTemplate: template,
    });
    expect(pod.spec!.containers[0]!.resources!.limits).toEqual({ "ephemeral-storage": "1000" });
    expect(pod.spec!.containers[0]!.securityContext).toEqual({ runAsNonRoot: true });
    expect(pod.spec!.affinity!.nodeAffinity).toBeDefined();
  });

  it("requests and limits the task's storage as ephemeral-storage", () => {
    const pod = placePod(basePod(), member({ resources: { cpu: 1, gpu: 0, memoryBytes: 0, storageBytes: 2 ** 30 } }), {});
    expect(pod.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: "1", "ephemeral-storage": String(2 ** 30) },
      limits: { "ephemeral-storage": String(2 ** 30) },
    });
  });

  it.each([
    [[], "a pod template is a mapping"],
    [{ kind: "Pod", spec: {}, status: {} }, "a pod template has metadata: and spec:, not status:"],
    [{ metadata: { name: "x" } }, "metadata: a pod template may set labels and annotations, not name"],
    [{ spec: { containers: [{}, {}] } }, "spec.containers: one container at most"],
    [{ spec: { restartPolicy: "Always" } }, "spec.restartPolicy is troupe's to set"],
    [{ spec: { containers: [{ command: ["sh"] }] } }, "spec.containers[0].command is the task's (troupe sets it)"],
  ])("refuses the pod template %j, saying why", (template, says) => {
    expect(() => checkPodTemplate(template, "pod_template")).toThrow(says);
  });
});

describe("the pool's placement options, as flags give them", () => {
  it("reads tolerations in kubectl's taint syntax and platforms from a YAML file", () => {
    const file = join(mkdtempSync(join(tmpdir(), "troupe-platforms-")), "platforms.yaml");
    writeFileSync(file, "a100:\n  node_selector: {gpu: a100}\n  tolerations: [gpu=a100:NoSchedule]\n");
    const options = kubernetesKind.options.parse({
      tolerations: ["dedicated=ml:NoExecute", "spot"],
      platforms: file,
      default_platform: "a100",
    });
    expect(options.tolerations).toEqual([
      { key: "dedicated", operator: "Equal", value: "ml", effect: "NoExecute" },
      { key: "spot", operator: "Exists" },
    ]);
    expect(options.platforms).toEqual({
      a100: { node_selector: { gpu: "a100" }, tolerations: [{ key: "gpu", operator: "Equal", value: "a100", effect: "NoSchedule" }] },
    });
    rmSync(dirname(file), { recursive: true, force: true });
  });

  it("refuses a toleration word with an unknown effect, and a platforms file that cannot be read", () => {
    expect(kubernetesKind.options.safeParse({ tolerations: ["gpu:Sometimes"] }).success).toBe(false);
    const missing = kubernetesKind.options.safeParse({ platforms: "/nonexistent/platforms.yaml" });
    expect(missing.success).toBe(false);
    expect(JSON.stringify(missing.error)).toContain("cannot read /nonexistent/platforms.yaml");
  });
});

const cluster = givenCluster();
const dir = mkdtempSync(join(tmpdir(), "troupe-k8s-platforms-"));
const namespace = uniqueNamespace("troupe-place");
let config: KubeConfig;
let core: CoreV1Api;

/** `troupe run FILE --runtime kubernetes` in the test's namespace (the built CLI, asynchronous: the test watches the pods meanwhile). */
async function runOnCluster(file: string, ...more: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const result = await troupe(["run", file, "--runtime", "kubernetes", "--namespace", namespace, ...more], {
    home: join(dir, "home"),
    env: { KUBECONFIG: cluster.cluster!.kubeconfig, NO_COLOR: "1", TROUPE_RUNTIME: undefined },
    timeoutMs: 120_000,
  });
  return { code: result.code, out: result.stdout, err: result.stderr };
}

describe.skipIf(!cluster.cluster)(`placement on the test cluster${cluster.reason ? ` (skipped: ${cluster.reason})` : ""}`, () => {
  beforeAll(async () => {
    await ensureBuilt();
    config = kubeConfigFrom(cluster.cluster!.kubeconfig);
    core = config.makeApiClient(CoreV1Api);
    await createNamespace(config, namespace);
  }, 300_000);
  afterAll(async () => {
    if (config) await deleteNamespace(config, namespace);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("places pods only where the pool's node selector and the tasks' nodesExcluded allow, made over the pool's template", async () => {
    const template = join(dir, "template.yaml");
    writeFileSync(
      template,
      "metadata:\n  labels: {team: robots}\nspec:\n  tolerations: [{key: example.com/dedicated, operator: Exists, effect: NoSchedule}]\n  containers:\n  - securityContext: {allowPrivilegeEscalation: false}\n",
    );
    const file = join(dir, "placed.yaml");
    writeFileSync(
      file,
      `workflow:
  name: placed
  resources:
    default: {cpu: 1}
    elsewhere: {cpu: 1, nodesExcluded: [kwok-node-1, kwok-node-2]}
  tasks:
  - {name: pinned, image: alpine, command: ["true"]}
  - {name: avoider, image: alpine, command: ["true"], resource: elsewhere}
`,
    );
    const seen = new Map<string, V1Pod>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const pod of (await core.listNamespacedPod({ namespace }).catch(() => undefined))?.items ?? [])
          if (pod.spec?.nodeName) seen.set(pod.metadata!.annotations![ANNOTATIONS.task]!, pod);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    // Every node but kwok-node-1 and -2 is excluded for `avoider`, and the pool pins everything to nodes of type kwok.
    const run = await runOnCluster(
      file,
      "--node-selector",
      "type=kwok",
      "--pod-template",
      template,
      "--pod-annotations",
      "troupe.test/run-for=1500ms",
    );
    watching = false;
    await watcher;
    expect(run.code, run.err).toBe(0);
    expect(run.err).toMatch(/nodesExcluded.*has an effect only on Kubernetes pools/);
    const avoider = seen.get("avoider")!;
    expect(avoider.spec!.nodeName).toBe("kwok-node-3");
    for (const pod of seen.values()) {
      // The pool's, and the architecture troupe-init (the barrier's holder) was built for.
      expect(pod.spec!.nodeSelector).toEqual({ type: "kwok", "kubernetes.io/arch": "amd64" });
      expect(pod.metadata!.labels!.team).toBe("robots");
      expect(pod.spec!.tolerations).toContainEqual({ key: "example.com/dedicated", operator: "Exists", effect: "NoSchedule" });
      // The task's own request and the template's container field: the API server admitted both.
      expect(pod.spec!.containers[0]!.resources!.requests!.cpu).toBe("1");
      expect(pod.spec!.containers[0]!.securityContext).toEqual({ allowPrivilegeEscalation: false });
    }
  }, 150_000);

  it("refuses a node selector no node has: the scheduler's reason, then the queue timeout", async () => {
    const file = join(dir, "nowhere.yaml");
    writeFileSync(
      file,
      'workflow:\n  name: nowhere\n  timeout: {queue_timeout: 3s}\n  tasks:\n  - {name: lost, image: alpine, command: ["true"]}\n',
    );
    const run = await runOnCluster(file, "--node-selector", "type=gpu-h100", "--output", "json");
    expect(run.code).toBe(1);
    const record = JSON.parse(run.out) as { groups: Array<{ tasks: Array<{ status: string; reason: string }> }> };
    expect(record.groups[0]!.tasks[0]!.status).toBe("FAILED_QUEUE_TIMEOUT");
    expect(record.groups[0]!.tasks[0]!.reason).toMatch(/node affinity\/selector|didn't match Pod's node affinity/);
  }, 120_000);
});
