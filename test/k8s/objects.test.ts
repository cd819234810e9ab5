/**
 * The Kubernetes runtime's objects (src/runtime/kubernetes/objects.ts, names.ts): names and labels within
 * Kubernetes' limits whatever the workflow's names, resources as quantities, bad pool settings refused with
 * where and why; and, against the real API server of the test cluster (scripts/k8s/up.sh), every object
 * accepted by its validation and admission (dryRun=All), and a group's headless Service publishing its pods
 * under their task names, as `{{host:X}}` needs.
 */
import { CoreV1Api, DiscoveryV1Api, SchedulingV1Api, Watch, type KubeConfig, type V1EndpointSlice } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TroupeError } from "../../src/errors/index.js";
import type { TaskLaunch } from "../../src/port/index.js";
import {
  attemptPod,
  checkPodSettings,
  groupService,
  LABELS,
  labelValue,
  memberHostName,
  podName,
  serviceName,
  taskResources,
  type KubernetesPodSettings,
  type Owner,
} from "../../src/runtime/kubernetes/index.js";
import { deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace, type K8sCluster } from "./k8s-cluster.js";

const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const LONG_TASK = `Trainer_${"x".repeat(55)}_0`; // 64 characters, troupe's longest name, with what DNS refuses
const OWNER: Owner = { home: "3f2a9c1b7d4e", runId: `${"long-workflow-name-".repeat(4)}42` };

function launch(overrides: Partial<TaskLaunch> = {}): TaskLaunch {
  return {
    key: "train/worker_0/0",
    taskName: "worker_0",
    groupName: "train",
    retryId: 0,
    image: "ubuntu:24.04",
    argv: ["/bin/sh", "-c", "echo $GREETING && exit 3"],
    env: { GREETING: "hello", lower_case: "yes", "WITH.DOT": "ok" },
    files: [],
    outputDir: "/tmp/out",
    inputDirs: [],
    address: "",
    hosts: {},
    logPath: "/tmp/log",
    resources: { cpu: 1.5, gpu: 2, memoryBytes: 3 * 1024 ** 3 },
    ...overrides,
  };
}

describe("names, labels and quantities", () => {
  it("makes pod and Service names DNS labels, unique per run and attempt, from any troupe name", () => {
    const names = [
      podName(OWNER.runId, LONG_TASK, 0, `g/${LONG_TASK}/0`),
      podName(OWNER.runId, "worker_0", 12, "train/worker_0/12"),
      serviceName(OWNER.runId, LONG_TASK),
      serviceName("r-1", "train"),
    ];
    for (const name of names) expect(name).toMatch(DNS_LABEL);
    expect(podName("run-1", "a", 0, "g/a/0")).not.toBe(podName("run-2", "a", 0, "g/a/0"));
    expect(podName("run-1", "a", 0, "g/a/0")).not.toBe(podName("run-1", "a", 1, "g/a/1"));
    expect(serviceName("run-1", "g")).not.toBe(serviceName("run-2", "g"));
    expect(podName("run-1", "worker_0", 3, "train/worker_0/3")).toMatch(/^worker-0-r3-[0-9a-f]{10}$/);
  });

  it("keeps label values as they are when valid, and shortens others with a hash", () => {
    expect(labelValue("run-7")).toBe("run-7");
    expect(labelValue(OWNER.runId)).toMatch(LABEL_VALUE);
    expect(labelValue(OWNER.runId)).not.toBe(labelValue(`${OWNER.runId}3`));
    expect(labelValue("--odd/value--")).toMatch(LABEL_VALUE);
    const pod = attemptPod(launch({ taskName: LONG_TASK, key: `train/${LONG_TASK}/0` }), OWNER, { namespace: "ns" });
    for (const value of Object.values(pod.metadata!.labels!)) expect(value).toMatch(LABEL_VALUE);
    // The exact names are kept in annotations.
    expect(pod.metadata!.annotations).toMatchObject({ "troupe.dev/run-id": OWNER.runId, "troupe.dev/task-name": LONG_TASK });
  });

  it("asks for cpu in millicores, memory in bytes and GPUs as the pool's extended resource, as requests and limits", () => {
    expect(taskResources({ cpu: 1.5, gpu: 2, memoryBytes: 3 * 1024 ** 3 })).toEqual({
      requests: { cpu: "1500m", memory: "3221225472", "nvidia.com/gpu": "2" },
      limits: { cpu: "1500m", memory: "3221225472", "nvidia.com/gpu": "2" },
    });
    expect(taskResources({ cpu: 0.0001, gpu: 0, memoryBytes: 0 }, "amd.com/gpu")).toEqual({
      requests: { cpu: "1m" },
      limits: { cpu: "1m" },
    });
    expect(taskResources({ cpu: 0, gpu: 1, memoryBytes: 0 }, "amd.com/gpu")?.limits).toEqual({ "amd.com/gpu": "1" });
    expect(taskResources({ cpu: 0, gpu: 0, memoryBytes: 0 })).toBeUndefined();
    expect(taskResources(undefined)).toBeUndefined();
  });

  it("names a member under its group's Service as OSMO does", () => {
    expect(memberHostName("Worker_0", "train-0123456789", "ml", "cluster.local")).toBe("worker-0.train-0123456789.ml.svc.cluster.local");
  });

  it("refuses pool settings every pod would be refused for, with where and why", () => {
    const where = "pool gpu-cluster";
    const refused = (settings: KubernetesPodSettings) => {
      try {
        checkPodSettings(settings, where);
      } catch (error) {
        expect(error).toBeInstanceOf(TroupeError);
        expect((error as TroupeError).code).toBe("E_K8S_SETTINGS");
        expect((error as TroupeError).kind).toBe("usage");
        return (error as Error).message;
      }
      return "accepted";
    };
    expect(refused({ namespace: "Team_A" })).toBe(
      `${where}: namespace "Team_A" is not a DNS label (lower case letters, digits and '-', at most 63)`,
    );
    expect(refused({ namespace: "ok", priorityClassName: "High Priority" })).toMatch(
      /priority class "High Priority" is not a DNS subdomain/,
    );
    expect(refused({ namespace: "ok", imagePullSecrets: ["reg/creds"] })).toMatch(/image pull secret "reg\/creds"/);
    expect(refused({ namespace: "team-a", priorityClassName: "high", imagePullSecrets: ["regcred"] })).toBe("accepted");
  });
});

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/k8s/objects.test.ts (API server part) skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(
  `the objects on a real API server (${attempt.reason ?? "scripts/k8s/up.sh"})`,
  { timeout: 60_000 },
  () => {
    const cluster = attempt.cluster as K8sCluster;
    const namespace = uniqueNamespace("troupe-objects-test");
    const priorityClass = `troupe-test-high-${process.pid}`;
    let admin: KubeConfig;
    let core: CoreV1Api;
    const settings = (): KubernetesPodSettings => ({
      namespace,
      nodeSelector: { type: "kwok" },
      tolerations: [{ key: "troupe.test/dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" }],
      priorityClassName: priorityClass,
      imagePullSecrets: ["regcred"],
    });

    beforeAll(async () => {
      admin = kubeConfigFrom(cluster.kubeconfig);
      core = admin.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await admin.makeApiClient(SchedulingV1Api).createPriorityClass({ body: { metadata: { name: priorityClass }, value: 1000 } });
    });

    afterAll(async () => {
      if (!admin) return;
      await admin
        .makeApiClient(SchedulingV1Api)
        .deletePriorityClass({ name: priorityClass })
        .catch(() => undefined);
      await deleteNamespace(admin, namespace);
    }, 90_000);

    it("accepts a task's pod (dryRun=All): labels, hostname, subdomain, command, env, resources, placement settings", async () => {
      const body = attemptPod(launch({ taskName: LONG_TASK, key: `train/${LONG_TASK}/0`, privileged: true }), OWNER, settings());
      const created = await core.createNamespacedPod({ namespace, body, dryRun: "All" });
      expect(created.metadata?.labels).toEqual(body.metadata?.labels);
      expect(created.spec?.restartPolicy).toBe("Never");
      expect(created.spec?.hostname).toBe(body.spec?.hostname);
      expect(created.spec?.subdomain).toBe(serviceName(OWNER.runId, "train"));
      const container = created.spec!.containers[0]!;
      expect(container.command).toEqual(["/bin/sh", "-c", "echo $GREETING && exit 3"]);
      expect(container.env).toEqual([
        { name: "GREETING", value: "hello" },
        { name: "lower_case", value: "yes" },
        { name: "WITH.DOT", value: "ok" },
      ]);
      expect(container.resources?.limits).toEqual({ cpu: "1500m", memory: "3221225472", "nvidia.com/gpu": "2" });
      expect(container.securityContext?.privileged).toBe(true);
      // Admission resolved the priority class into the pod's priority.
      expect(created.spec?.priority).toBe(1000);
      expect(created.spec?.automountServiceAccountToken).toBe(false);
      // Nothing was stored.
      await expect(core.readNamespacedPod({ name: body.metadata!.name!, namespace })).rejects.toMatchObject({ code: 404 });
    });

    it("accepts a hostNetwork task's pod on its node's network, the cluster's resolver kept (dryRun=All)", async () => {
      const plain = attemptPod(launch({ taskName: "plain", key: "train/plain/0" }), OWNER, settings());
      expect(plain.spec?.hostNetwork).toBeUndefined();
      const body = attemptPod(launch({ taskName: "onhost", key: "train/onhost/0", hostNetwork: true }), OWNER, settings());
      const created = await core.createNamespacedPod({ namespace, body, dryRun: "All" });
      expect(created.spec?.hostNetwork).toBe(true);
      expect(created.spec?.dnsPolicy).toBe("ClusterFirstWithHostNet");
      expect(created.spec?.subdomain).toBe(serviceName(OWNER.runId, "train"));
    });

    it("accepts a group's headless Service (dryRun=All)", async () => {
      const body = groupService(LONG_TASK, OWNER, settings());
      const created = await core.createNamespacedService({ namespace, body, dryRun: "All" });
      expect(created.spec?.clusterIP).toBe("None");
      expect(created.spec?.selector).toEqual(body.metadata?.labels);
    });

    it("is refused by the API server where a setting is wrong for the cluster, which is what checkPodSettings is for", async () => {
      const body = attemptPod(launch(), OWNER, { ...settings(), priorityClassName: "no-such-class" });
      await expect(core.createNamespacedPod({ namespace, body, dryRun: "All" })).rejects.toMatchObject({ code: 403 });
    });

    it("publishes a group's pods under their task names through the Service's EndpointSlice", async () => {
      const group = "pair";
      const members = ["Leader", "worker_1"];
      const podSettings: KubernetesPodSettings = { namespace };
      await core.createNamespacedService({ namespace, body: groupService(group, OWNER, podSettings) });
      for (const task of members) {
        const body = attemptPod(launch({ groupName: group, taskName: task, key: `${group}/${task}/0` }), OWNER, podSettings);
        await core.createNamespacedPod({ namespace, body });
      }
      // Watched until the slice lists both members' hostnames with addresses (kwok gives pods their IPs).
      const service = serviceName(OWNER.runId, group);
      const hostnames = await new Promise<string[]>((resolve, reject) => {
        let request: AbortController | undefined;
        const timer = setTimeout(() => {
          request?.abort();
          reject(new Error(`no EndpointSlice of ${service} listed both members within 30 s`));
        }, 30_000);
        const look = (slice: V1EndpointSlice) => {
          // A slice the controller has just made lists no endpoints yet: the API gives `endpoints: null` then.
          const named = (slice.endpoints ?? []).filter((e) => e.addresses.length > 0 && e.hostname).map((e) => e.hostname!);
          if (named.length === members.length) {
            clearTimeout(timer);
            request?.abort();
            resolve(named.sort());
          }
        };
        void admin
          .makeApiClient(DiscoveryV1Api)
          .listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` })
          .then((list) => {
            list.items.forEach(look);
            return new Watch(admin).watch(
              `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
              { labelSelector: `kubernetes.io/service-name=${service}`, resourceVersion: list.metadata?.resourceVersion },
              (_phase, slice: V1EndpointSlice) => look(slice),
              () => undefined,
            );
          })
          .then((controller) => (request = controller), reject);
      });
      expect(hostnames).toEqual(["leader", "worker-1"]);
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.group}=${group}` });
      expect(pods.items).toHaveLength(2);
    });
  },
);
