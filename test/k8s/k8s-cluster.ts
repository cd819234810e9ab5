/**
 * The real Kubernetes test cluster (scripts/k8s/up.sh: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok's fake nodes on 127.0.0.1) for the tests that need one: the cluster CI started,
 * named by TROUPE_K8S_KUBECONFIG (its state directory's `env` file, which up.sh wrote, has the rest). Never
 * KUBECONFIG: a developer's own cluster is not the one these tests make namespaces in.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { CoreV1Api, KubeConfig, Watch, type V1Pod } from "@kubernetes/client-node";

export interface K8sCluster {
  /** The administrator's kubeconfig (client certificate in group system:masters). */
  readonly kubeconfig: string;
  /** The limited user's kubeconfig (a static token): may only get, list and watch pods in `limitedNamespace`. */
  readonly limitedKubeconfig: string;
  readonly limitedToken: string;
  readonly limitedNamespace: string;
  /** The API server's URL (https://127.0.0.1:PORT). */
  readonly server: string;
  /** How many kwok nodes there are (kwok-node-1 ...). */
  readonly nodes: number;
  /** The state directory (logs of every daemon under log/). */
  readonly dir: string;
}

export type ClusterAttempt = { cluster: K8sCluster; reason?: undefined } | { cluster?: undefined; reason: string };

/** Reads `export NAME=VALUE` lines (what up.sh prints and keeps in its `env` file). */
export function parseExports(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) values[m[1]!] = m[2]!;
  }
  return values;
}

/** The cluster CI started (TROUPE_K8S_KUBECONFIG), or why there is none. */
export function givenCluster(): ClusterAttempt {
  const given = process.env.TROUPE_K8S_KUBECONFIG;
  if (!given)
    return {
      reason:
        'no Kubernetes test cluster: TROUPE_K8S_KUBECONFIG is not set (scripts/test.sh sets it; by hand: eval "$(bash scripts/k8s/up.sh)")',
    };
  // up.sh writes the kubeconfigs into DIR/kubeconfig/ and the settings into DIR/env.
  const envFile = `${dirname(dirname(given))}/env`;
  if (!existsSync(envFile))
    return { reason: `TROUPE_K8S_KUBECONFIG names ${given}, but up.sh's ${envFile} is missing (is the cluster up?)` };
  const values = parseExports(readFileSync(envFile, "utf8"));
  const missing = [
    "TROUPE_K8S_LIMITED_KUBECONFIG",
    "TROUPE_K8S_LIMITED_TOKEN",
    "TROUPE_K8S_LIMITED_NAMESPACE",
    "TROUPE_K8S_SERVER",
    "TROUPE_K8S_NODES",
    "TROUPE_K8S_DIR",
  ].filter((name) => !values[name]);
  if (missing.length > 0) return { reason: `${envFile} lacks ${missing.join(", ")}` };
  return {
    cluster: {
      kubeconfig: given,
      limitedKubeconfig: values.TROUPE_K8S_LIMITED_KUBECONFIG!,
      limitedToken: values.TROUPE_K8S_LIMITED_TOKEN!,
      limitedNamespace: values.TROUPE_K8S_LIMITED_NAMESPACE!,
      server: values.TROUPE_K8S_SERVER!,
      nodes: Number(values.TROUPE_K8S_NODES),
      dir: values.TROUPE_K8S_DIR!,
    },
  };
}

export function kubeConfigFrom(file: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(file);
  return config;
}

/** A kubeconfig for the cluster's server and CA with only a bearer token (for 401 tests: any token at all). */
export function tokenKubeConfig(cluster: K8sCluster, token: string): KubeConfig {
  const base = kubeConfigFrom(cluster.limitedKubeconfig);
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: base.clusters,
    users: [{ name: "token-user", token }],
    contexts: [{ name: "token", cluster: base.getCurrentCluster()!.name, user: "token-user" }],
    currentContext: "token",
  });
  return config;
}

/** A namespace name no other test run uses (lower case, at most 63 characters). */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`.toLowerCase().slice(0, 63);
}

/**
 * Deletes a namespace and waits (through a watch) until it is gone: the controller manager deletes what is in
 * it, kwok removes its pods, and only then does the namespace itself go.
 */
/** Makes namespace `name` and waits for its default service account (the controller manager's), which pods need. */
export async function createNamespace(config: KubeConfig, name: string): Promise<void> {
  const core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name } } });
  for (let i = 0; i < 100; i++) {
    const ready = await core.readNamespacedServiceAccount({ name: "default", namespace: name }).then(
      () => true,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function deleteNamespace(config: KubeConfig, name: string, withinMs = 60_000): Promise<void> {
  const core = config.makeApiClient(CoreV1Api);
  let resourceVersion: string;
  try {
    resourceVersion = (await core.deleteNamespace({ name })).metadata?.resourceVersion ?? "";
  } catch (error) {
    if ((error as { code?: number }).code === 404) return;
    throw error;
  }
  await new Promise<void>((resolve, reject) => {
    let request: AbortController | undefined;
    const timer = setTimeout(() => {
      request?.abort();
      reject(new Error(`namespace ${name} was still there ${withinMs} ms after its deletion`));
    }, withinMs);
    const finish = (error?: unknown) => {
      clearTimeout(timer);
      request?.abort();
      if (error) reject(error instanceof Error ? error : new Error(String(error)));
      else resolve();
    };
    void new Watch(config)
      .watch(
        "/api/v1/namespaces",
        { fieldSelector: `metadata.name=${name}`, resourceVersion },
        (phase) => {
          if (phase === "DELETED") finish();
        },
        (error) => {
          if (error && !(error instanceof Error && error.name === "AbortError")) finish(error);
        },
      )
      .then((controller) => {
        request = controller;
        // Gone between the delete call and the watch: the watch would wait for nothing.
        core.readNamespace({ name }).catch((error: { code?: number }) => finish(error.code === 404 ? undefined : error));
      }, finish);
  });
}

/** The first container's state of a pod, as one word (waiting:REASON, running, terminated:CODE). */
export function containerState(pod: V1Pod): string {
  const state = pod.status?.containerStatuses?.[0]?.state;
  if (state?.terminated) return `terminated:${state.terminated.exitCode}`;
  if (state?.running) return "running";
  if (state?.waiting) return `waiting:${state.waiting.reason ?? ""}`;
  return "none";
}

/**
 * A ReadWriteMany PersistentVolumeClaim `claim` in `namespace`, bound by the controller manager to a
 * PersistentVolume made for it alone (an NFS source that kwok's nodes never mount), ready for pods: the
 * scheduler places no pod whose claim is unbound. Returns what removes the volume (the claim goes with the
 * namespace).
 */
export async function createDataVolume(config: KubeConfig, namespace: string, claim: string): Promise<() => Promise<void>> {
  const core = config.makeApiClient(CoreV1Api);
  const volumeName = `troupe-test-${namespace}-${claim}`.slice(0, 253);
  await core.createPersistentVolume({
    body: {
      metadata: { name: volumeName, labels: { "troupe.test/suite": "data-volume" } },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteMany"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: "",
        nfs: { server: "127.0.0.1", path: "/troupe-test" },
        claimRef: { namespace, name: claim },
      },
    },
  });
  await core.createNamespacedPersistentVolumeClaim({
    namespace,
    body: {
      metadata: { name: claim },
      spec: { accessModes: ["ReadWriteMany"], storageClassName: "", volumeName, resources: { requests: { storage: "1Gi" } } },
    },
  });
  for (let i = 0; i < 300; i++) {
    const read = await core.readNamespacedPersistentVolumeClaim({ name: claim, namespace });
    if (read.status?.phase === "Bound") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return async () => {
    await core.deletePersistentVolume({ name: volumeName }).catch(() => undefined);
  };
}
