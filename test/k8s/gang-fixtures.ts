/**
 * What the gang tests share: scheduler-plugins' PodGroup CRD (pinned; scripts/k8s/gang-crds.sh fetches it from
 * the Go module proxy), installed in the test cluster (cluster-wide and idempotent), and the coscheduling
 * kube-scheduler scripts/k8s/coscheduling-build.sh builds, if it has been built.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ApiextensionsV1Api, type KubeConfig, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import { parse } from "yaml";

const ROOT = new URL("../..", import.meta.url).pathname;
export const SCHEDULER_PLUGINS_VERSION = "v0.33.5";
export const COSCHEDULING = { group: "scheduling.x-k8s.io", version: "v1alpha1", plural: "podgroups" };

/** The CRD's file, fetched (or found in the cache) by the pinned script; or why it cannot be had. */
export function fetchPodGroupCrd(): { file?: string; reason?: string } {
  const fetched = spawnSync("bash", [join(ROOT, "scripts/k8s/gang-crds.sh")], { encoding: "utf8", timeout: 300_000 });
  if (fetched.status !== 0) return { reason: `scripts/k8s/gang-crds.sh failed: ${fetched.stderr.trim()}` };
  return { file: fetched.stdout.trim() };
}

export const VOLCANO = { group: "scheduling.volcano.sh", version: "v1beta1", plural: "podgroups" };

/** Volcano's PodGroup CRD, generated from its pinned API types (or found in the cache) by the pinned script; or why it cannot be had. */
export function fetchVolcanoCrd(): { file?: string; reason?: string } {
  const made = spawnSync("bash", [join(ROOT, "scripts/k8s/volcano-crd.sh")], { encoding: "utf8", timeout: 600_000 });
  if (made.status !== 0) return { reason: `scripts/k8s/volcano-crd.sh failed: ${made.stderr.trim().split("\n").slice(-3).join(" ")}` };
  return { file: made.stdout.trim() };
}

/** Creates the CRD (another run may have already) and waits until the API server serves it. */
export async function installPodGroupCrd(config: KubeConfig, file: string): Promise<void> {
  const extensions = config.makeApiClient(ApiextensionsV1Api);
  const body = parse(readFileSync(file, "utf8")) as V1CustomResourceDefinition;
  await extensions.createCustomResourceDefinition({ body }).catch((error: { code?: number }) => {
    if (error.code !== 409) throw error;
  });
  for (let i = 0; i < 100; i++) {
    const made = await extensions.readCustomResourceDefinition({ name: body.metadata!.name! });
    if (made.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the CRD ${body.metadata!.name!} was not established within 10 s`);
}

/** The coscheduling kube-scheduler's binary, where scripts/k8s/coscheduling-build.sh put it, if it did. */
export function coschedulingScheduler(): { bin?: string; reason?: string } {
  const bin = join(
    process.env.TROUPE_K8S_CACHE ?? "/var/cache/troupe",
    `scheduler-plugins-${SCHEDULER_PLUGINS_VERSION}`,
    "bin",
    "kube-scheduler",
  );
  return existsSync(bin)
    ? { bin }
    : { reason: `no coscheduling kube-scheduler at ${bin}: bash scripts/k8s/coscheduling-build.sh builds it (about 17 min)` };
}
