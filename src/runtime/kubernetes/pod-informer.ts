/**
 * One informer per run session: every pod of the run (by its owner and run labels), listed once and then
 * watched, each change handed to the group that waits for that pod by name. When the watch fails (a 410 Gone
 * after a compaction, the connection lost, a 5xx) the informer starts again after a pause: a new list, then a
 * watch from the list's resource version, so nothing that happened in between is missed (the client's
 * ListWatch re-lists on every start).
 */
import { makeInformer, type CoreV1Api, type Informer, type KubeConfig, type ObjectCache, type V1Pod } from "@kubernetes/client-node";
import { tolerated } from "../../util/log.js";

type PodEvents = (pod: V1Pod, gone: boolean) => void;

/** How long after a failed watch the informer lists and watches again. */
const RESTART_MS = 1_000;

export class PodInformer {
  private readonly informer: Informer<V1Pod> & ObjectCache<V1Pod>;
  private readonly listeners = new Map<string, PodEvents>();
  private stopped = false;
  private started = false;
  private firstError: unknown;
  private timer: NodeJS.Timeout | undefined;
  /** How many times the watch failed and was started again (for tests and logs). */
  restarts = 0;

  constructor(config: KubeConfig, core: CoreV1Api, namespace: string, labelSelector: string) {
    this.informer = makeInformer(
      config,
      `/api/v1/namespaces/${namespace}/pods`,
      () => core.listNamespacedPod({ namespace, labelSelector }),
      labelSelector,
    );
    this.informer.on("add", (pod) => this.deliver(pod, false));
    this.informer.on("update", (pod) => this.deliver(pod, false));
    this.informer.on("delete", (pod) => this.deliver(pod, true));
    this.informer.on("error", (error) => {
      if (this.stopped) return;
      if (!this.started) {
        // The first list failed (401, 403, the server unreachable): said by start(), not retried.
        this.firstError ??= error;
        return;
      }
      tolerated("the pod watch failed; listing and watching again", { namespace }, "warn")(error);
      this.restarts++;
      this.timer = setTimeout(() => void this.begin(), RESTART_MS);
    });
  }

  /** Lists and watches; resolves once the first list is in, rejects with the API server's answer when it is refused. */
  async start(): Promise<void> {
    await this.informer.start();
    if (this.firstError !== undefined) {
      await this.stop();
      throw this.firstError;
    }
    this.started = true;
  }

  private async begin(): Promise<void> {
    if (this.stopped) return;
    await this.informer.start().catch(() => undefined);
  }

  /** Events of the pod `name` (and its current state, if the informer has it) until the returned function is called. */
  watch(name: string, onPod: PodEvents): () => void {
    this.listeners.set(name, onPod);
    return () => {
      if (this.listeners.get(name) === onPod) this.listeners.delete(name);
    };
  }

  /** The pods the informer holds now. */
  list(): readonly V1Pod[] {
    return this.informer.list();
  }

  private deliver(pod: V1Pod, gone: boolean): void {
    const name = pod.metadata?.name;
    if (name) this.listeners.get(name)?.(pod, gone);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.informer.stop();
  }
}
