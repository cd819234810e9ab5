/**
 * What happens to the pods of one namespace of the test cluster while `troupe run` works there, seen through
 * a watch of the test's own: when each pod appeared, when its deletion was asked for, when it was gone, its
 * last container state. And, playing the kubelet's part that kwok leaves to the test, each pod's "output": a
 * kwok `Logs` object naming a file of the text its task and attempt are given (CRI log format), made as soon as
 * the pod is seen, so troupe's log reading runs against the real log API with known text.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CustomObjectsApi, Watch, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { containerState } from "./k8s-cluster.js";

export interface PodHistory {
  name: string;
  task: string;
  retry: number;
  run: string;
  created: number;
  /** When the watch first saw a deletionTimestamp (troupe's delete request). */
  deleting?: number;
  /** When the pod was gone from the API. */
  gone?: number;
  /** The task container's last state (containerState's word: terminated:143, running, ...). */
  lastState: string;
}

/** The log lines a task's attempt "writes": keyed `TASK.RETRY` (that attempt) or `TASK` (every attempt). */
export type PodLogs = Record<string, string>;

export class PodRecorder {
  readonly pods = new Map<string, PodHistory>();
  /** Logs to give the pods that appear from now on. */
  logs: PodLogs = {};
  private request: AbortController | undefined;
  private failure: unknown;
  private readonly custom: CustomObjectsApi;

  constructor(
    private readonly config: KubeConfig,
    private readonly namespace: string,
    private readonly logDir: string,
  ) {
    this.custom = config.makeApiClient(CustomObjectsApi);
  }

  async start(): Promise<void> {
    this.request = await new Watch(this.config).watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      {},
      (phase: string, pod: V1Pod) => this.seen(phase, pod),
      (error) => {
        if (error && !(error instanceof Error && error.name === "AbortError")) this.failure = error;
      },
    );
  }

  stop(): void {
    this.request?.abort();
  }

  /** The pods of one run, by task name and attempt: `TASK.RETRY`. */
  ofRun(runId: string): Map<string, PodHistory> {
    if (this.failure) throw new Error(`the test's pod watch failed: ${String(this.failure)}`);
    const out = new Map<string, PodHistory>();
    for (const pod of this.pods.values()) if (pod.run === runId) out.set(`${pod.task}.${pod.retry}`, pod);
    return out;
  }

  /**
   * The pods of one run once the test's watch has seen each of them go (troupe's run may end a moment before
   * the last deletion reaches this watch); undefined `gone` where one was still there after `withinMs`.
   */
  async ofRunSettled(runId: string, withinMs = 10_000): Promise<Map<string, PodHistory>> {
    const deadline = Date.now() + withinMs;
    while ([...this.ofRun(runId).values()].some((pod) => pod.gone === undefined) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    return this.ofRun(runId);
  }

  private seen(phase: string, pod: V1Pod): void {
    const meta = pod.metadata!;
    const name = meta.name!;
    let history = this.pods.get(name);
    if (!history) {
      history = {
        name,
        task: meta.labels?.["troupe.dev/task"] ?? "",
        retry: Number(meta.labels?.["troupe.dev/retry"] ?? -1),
        run: meta.annotations?.["troupe.dev/run-id"] ?? "",
        created: Date.now(),
        lastState: "none",
      };
      this.pods.set(name, history);
      void this.giveLog(history).catch((error: unknown) => (this.failure = error));
    }
    history.lastState = containerState(pod);
    if (meta.deletionTimestamp && history.deleting === undefined) history.deleting = Date.now();
    if (phase === "DELETED") history.gone = Date.now();
  }

  private async giveLog(pod: PodHistory): Promise<void> {
    const text = this.logs[`${pod.task}.${pod.retry}`] ?? this.logs[pod.task];
    if (text === undefined) return;
    const file = join(this.logDir, `${pod.name}.log`);
    const lines = text.split("\n").filter((line, i, all) => line !== "" || i < all.length - 1);
    writeFileSync(file, lines.map((line, i) => `2026-01-01T00:00:${String(i).padStart(2, "0")}.000000000Z stdout F ${line}\n`).join(""));
    await this.custom.createNamespacedCustomObject({
      group: "kwok.x-k8s.io",
      version: "v1alpha1",
      namespace: this.namespace,
      plural: "logs",
      body: {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Logs",
        metadata: { name: pod.name, namespace: this.namespace },
        spec: { logs: [{ containers: ["task"], logsFile: file }] },
      },
    });
  }
}
