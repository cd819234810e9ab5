/**
 * A Kubernetes cluster as the port's pool backend. The cluster's scheduler places the members (placement
 * "cluster": the time until every pod is bound counts as SCHEDULING); each member is one pod per attempt,
 * holding at the barrier until troupe releases it (barrier.ts); a group of several members has a headless
 * Service (its members' names). Pods share no disk with troupe (data through the data plane) and their logs
 * come through the API server (GroupHandle.logs). Pods outlive troupe: a group's durable id is its label
 * selector, by which a restarted troupe finds them again; a sweep deletes what a dead troupe left.
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import type { GroupHandle, GroupListener, GroupRef, PoolBackend, PoolCapabilities, RunContext, RunSession } from "../../port/index.js";
import { tolerated } from "../../util/log.js";
import { isProcessTokenAlive, processToken } from "../../util/process-identity.js";
import { homeIdentity } from "../home-identity.js";
import { TroupeError } from "../../errors/index.js";
import { builtHelper } from "../native-helpers.js";
import { isStatus } from "./api-errors.js";
import { pathInside, type DataVolume } from "./data-volume.js";
import { checkDataVolume } from "./data-volume-check.js";
import { DEFAULT_BARRIER_HOLDER } from "./barrier.js";
import type { HeldPodSettings } from "./held-pod.js";
import { InitBinaries } from "./init-binary.js";
import type { InitRef } from "./init-holder.js";
import { KubernetesGroup, type KubernetesSite } from "./kubernetes-group.js";
import { ANNOTATIONS, groupLabels, LABELS, labelValue, type Owner } from "./names.js";
import { PodGroups } from "./pod-groups.js";
import { PodInformer } from "./pod-informer.js";
import { PULL_SECRET_TYPE, PullSecrets } from "./pull-secrets.js";

export interface KubernetesSettings extends HeldPodSettings {
  config: KubeConfig;
  /** troupe's home (its identity is every object's owner label). */
  home: string;
  /** The cluster's DNS domain (`{{host:X}}` ends in it). Default cluster.local. */
  clusterDomain?: string;
  /** The context's name, for the first line of `troupe run`. */
  context?: string;
  /** troupe-init for the init holder (default: the one `npm run build` made; tests give others, or undefined: not built). */
  initBinary?: string;
}

/** Annotations of every pod a session makes: which troupe process made it, and whether its run keeps its tasks. */
export const PROCESS_ANNOTATION = "troupe.dev/process";
export const KEEP_ANNOTATION = "troupe.dev/keep";

/** What a pool can do; with a data volume, what troupe's machine and the pods share. */
function capabilitiesOf(dataVolume: DataVolume | undefined, platforms: readonly string[] | undefined): PoolCapabilities {
  return {
    placement: "cluster",
    // Through the data volume (data-volume.ts), where the pool names one.
    sharedFileSystem: dataVolume !== undefined,
    tasksOutliveTroupe: true,
    localLogs: false,
    // A pod's volumes: its data directories on the data volume, allowed host paths (`volumeMounts`) of its node.
    mounts: true,
    // A pod's volumes are fixed when it is made, at placement: it is given its mounts then.
    sandboxAtPlacement: true,
    dataPaths: "osmo",
    // A pod on its node's network (spec.hostNetwork): its address is the node's.
    hostNetwork: true,
    // Without a data volume pods share no disk with troupe and move no data themselves: `{{output}}` and
    // `{{input}}` do not exist there.
    taskData: dataVolume !== undefined,
    ...(platforms ? { platforms } : {}),
    // The cluster's scheduler queues the pods it cannot place yet, so troupe need not hold tasks back as it does
    // for this machine (64): a run of 1,000 tasks makes its pods at once, as `kubectl apply` would. What a live
    // task costs troupe bounds it: a followed log (an HTTP stream) and a log file each, about 0.3 MB and 2.5 file
    // descriptors, measured (bench/k8s-scale.mjs --troupe-only: 64 live tasks 151 MB and 171 descriptors, 1,000
    // live 416 MB and 2,537); the run's pods share one watch. Beyond that, --max-parallel or max_parallel.
    defaultMaxParallel: 1000,
  };
}

/** The label selector of everything of a run (or, with `group`, of one of its groups): a group's durable id. */
export function runSelector(owner: Owner, group?: string): string {
  const labels =
    group === undefined ? { [LABELS.owner]: labelValue(owner.home), [LABELS.run]: labelValue(owner.runId) } : groupLabels(owner, group);
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
}

export class KubernetesPool implements PoolBackend {
  readonly kind = "kubernetes";
  readonly capabilities: PoolCapabilities;
  private readonly homeId: string;
  private readonly core: CoreV1Api;
  private readonly podGroups: PodGroups;
  /** troupe-init's ConfigMap in the namespace (the init holder's). */
  private readonly inits: InitBinaries;
  /** Runs with a session open in this process: never swept. */
  private readonly open = new Set<string>();
  /** The data volume's claim, checked once (data-volume-check.ts). */
  private volumeChecked: Promise<void> | undefined;

  constructor(private readonly settings: KubernetesSettings) {
    this.capabilities = capabilitiesOf(settings.dataVolume, settings.platforms && Object.keys(settings.platforms));
    this.homeId = homeIdentity(settings.home);
    this.core = settings.config.makeApiClient(CoreV1Api);
    this.podGroups = new PodGroups(settings.config.makeApiClient(CustomObjectsApi), settings);
    this.inits = new InitBinaries(this.core, "initBinary" in settings ? settings.initBinary : builtHelper("troupe-init"));
  }

  describe(): string {
    const server = this.settings.config.getCurrentCluster()?.server ?? "?";
    const context = this.settings.context ?? this.settings.config.getCurrentContext();
    const data = this.settings.dataVolume ? `; data on claim ${this.settings.dataVolume.claim}` : "";
    const holder = this.settings.barrierHolder ?? DEFAULT_BARRIER_HOLDER;
    return `runtime: kubernetes (${server}, context ${context}, namespace ${this.settings.namespace}; one pod per task, held by ${holder === "init" ? "troupe-init" : "the image's shell"}${data})`;
  }

  notices(): string[] {
    const volume = this.settings.dataVolume;
    return [
      "on Kubernetes, each task runs in a pod of its image; its logs come through the API server",
      ...(volume ? [`pods see their {{output}} and {{input}} through claim ${volume.claim} (here ${volume.path})`] : []),
    ];
  }

  async openSession(run: RunContext): Promise<RunSession> {
    // Checked again after a failure: a server's pool may see the claim made later.
    if (this.settings.dataVolume)
      await (this.volumeChecked ??= checkDataVolume(this.core, this.settings.namespace, this.settings.dataVolume).catch(
        (error: unknown) => {
          this.volumeChecked = undefined;
          throw error;
        },
      ));
    const volume = this.settings.dataVolume;
    if (volume && pathInside(volume.path, run.dataDir) === undefined)
      throw new TroupeError(
        "E_K8S_DATA_VOLUME",
        `run ${run.runId}'s data directory ${run.dataDir} is not on the data volume (claim ${volume.claim}, seen here at ${volume.path}): its pods could not see their data`,
        "usage",
        `keep troupe's home on the volume: TROUPE_HOME=${volume.path}/troupe (a server's --home likewise)`,
      );
    // Held by troupe-init: without it (or with one no ConfigMap holds) no pod could run; said before any is made.
    if ((this.settings.barrierHolder ?? DEFAULT_BARRIER_HOLDER) === "init") this.inits.load();
    const owner: Owner = { home: this.homeId, runId: run.runId };
    const informer = new PodInformer(this.settings.config, this.core, this.settings.namespace, runSelector(owner));
    await informer.start();
    this.open.add(run.runId);
    const annotations = { [PROCESS_ANNOTATION]: processToken(), ...(run.keepTasks ? { [KEEP_ANNOTATION]: "1" } : {}) };
    const settings = { ...this.settings, podAnnotations: { ...this.settings.podAnnotations, ...annotations } };
    const pullSecrets = new PullSecrets(this.core, owner, this.settings.namespace, run.registryAuth, annotations);
    const initHolder = () =>
      (settings.barrierHolder ?? DEFAULT_BARRIER_HOLDER) === "init" ? this.inits.ensure(settings.namespace) : Promise.resolve(undefined);
    return new KubernetesSession(this.settings.config, this.core, owner, settings, informer, pullSecrets, this.podGroups, initHolder, () =>
      this.open.delete(run.runId),
    );
  }

  /**
   * Deletes the pods (and what goes with them) of this home's runs whose troupe process is gone, but for the
   * runs in `spare` and those open here. Runs that keep their tasks (a server's) are a resuming server's to
   * keep or sweep: a sweep without `spare` leaves them.
   */
  async sweep(spare?: ReadonlySet<string>): Promise<string[]> {
    const namespace = this.settings.namespace;
    const labelSelector = `${LABELS.owner}=${labelValue(this.homeId)}`;
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector });
    // A run's pull Secrets too: a troupe may die after making them, before any pod.
    const pullSecrets = await this.core.listNamespacedSecret({ namespace, labelSelector, fieldSelector: `type=${PULL_SECRET_TYPE}` });
    const doomedRuns = new Set<string>();
    const removed: string[] = [];
    const objects = [
      ...pods.items.map((object) => ({ what: "pod", metadata: object.metadata })),
      ...pullSecrets.items.map((object) => ({ what: "secret", metadata: object.metadata })),
    ];
    for (const { what, metadata } of objects) {
      const annotations = metadata?.annotations ?? {};
      const run = annotations[ANNOTATIONS.runId] ?? "";
      if (this.open.has(run) || spare?.has(run)) continue;
      if (annotations[KEEP_ANNOTATION] === "1" && spare === undefined) continue;
      const token = annotations[PROCESS_ANNOTATION];
      if (token && isProcessTokenAlive(token)) continue;
      doomedRuns.add(run);
      removed.push(`kubernetes ${what} ${namespace}/${metadata!.name!}`);
    }
    for (const runId of doomedRuns) await deleteRun(this.core, this.podGroups, namespace, runSelector({ home: this.homeId, runId }), 0);
    // troupe-init's ConfigMaps of other builds that no pod uses (init-binary.ts); a user who may not list them has none of troupe's to sweep.
    const inits = await this.inits.sweep(namespace).catch((error: unknown) => {
      if (isStatus(error, 403)) return [];
      throw error;
    });
    return [...removed, ...inits];
  }
}

/** Deletes every pod, Secret, Service and PodGroup of a selector. */
async function deleteRun(
  core: CoreV1Api,
  podGroups: PodGroups,
  namespace: string,
  labelSelector: string,
  gracePeriodSeconds: number,
): Promise<void> {
  const ignoreMissing = (error: unknown) => {
    if (!isStatus(error, 404)) throw error;
  };
  await core.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds }).catch(ignoreMissing);
  await core.deleteCollectionNamespacedSecret({ namespace, labelSelector }).catch(ignoreMissing);
  const services = await core.listNamespacedService({ namespace, labelSelector });
  for (const service of services.items)
    await core.deleteNamespacedService({ namespace, name: service.metadata!.name! }).catch(ignoreMissing);
  await podGroups.deleteAll(labelSelector);
}

class KubernetesSession implements RunSession, KubernetesSite {
  readonly clusterDomain: string;
  private readonly groups: KubernetesGroup[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: KubeConfig,
    readonly core: CoreV1Api,
    readonly owner: Owner,
    readonly settings: KubernetesSettings,
    private readonly informer: PodInformer,
    private readonly pullSecrets: PullSecrets,
    readonly podGroups: PodGroups,
    readonly initHolder: () => Promise<InitRef | undefined>,
    private readonly onClose: () => void,
  ) {
    this.clusterDomain = settings.clusterDomain ?? "cluster.local";
  }

  watch(pod: string, onPod: (pod: import("@kubernetes/client-node").V1Pod, gone: boolean) => void): () => void {
    return this.informer.watch(pod, onPod);
  }

  pullSecret(image: string | undefined): Promise<string | undefined> {
    return this.pullSecrets.forImage(image);
  }

  openGroup(group: GroupRef, listener: GroupListener, id?: string): GroupHandle {
    const handle = new KubernetesGroup(this, group, listener, id ?? runSelector(this.owner, group.name));
    this.groups.push(handle);
    return handle;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(this.groups.map((g) => g.close().catch(tolerated("deleting a group's pods", { run: this.owner.runId }, "warn"))));
      await this.informer.stop();
      await deleteRun(this.core, this.podGroups, this.settings.namespace, runSelector(this.owner), 0).catch(
        tolerated("deleting a run's objects", { run: this.owner.runId }, "warn"),
      );
      this.onClose();
    })();
    return this.closing;
  }
}
