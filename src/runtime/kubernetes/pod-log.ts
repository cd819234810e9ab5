/**
 * A pod container's log through the API server (`GET .../pods/NAME/log`), as a request troupe can cut off at
 * any time: the client's `Log` hands back its AbortController only once the answer's headers come, and a
 * followed log that has nothing to say yet sends none, so a pod that ends silent could never be let go.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Writable } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";

export interface PodLogRequest {
  /** Resolves when the answer has ended (the log was written whole to the sink), or was cut off. */
  readonly done: Promise<void>;
  cancel(): void;
}

export function readPodLog(
  config: KubeConfig,
  namespace: string,
  pod: string,
  container: string,
  sink: Writable,
  follow: boolean,
): PodLogRequest {
  let cancelled = false;
  let cancelRequest = () => {};
  const done = (async () => {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error("no current cluster in the kubeconfig");
    const url = new URL(`${cluster.server}/api/v1/namespaces/${namespace}/pods/${pod}/log`);
    url.searchParams.set("container", container);
    if (follow) url.searchParams.set("follow", "true");
    const options: import("node:https").RequestOptions = { method: "GET", headers: {} };
    await config.applyToHTTPSOptions(options);
    if (cancelled) return;
    await new Promise<void>((resolve, reject) => {
      // An http:// server (a local proxy, `kubectl proxy`) is spoken to in plain HTTP.
      const request = url.protocol === "http:" ? httpRequest : httpsRequest;
      const req = request(url, options, (response) => {
        if (response.statusCode !== 200) {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => reject(new Error(`${response.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`)));
          return;
        }
        response.on("data", (chunk: Buffer) => sink.write(chunk));
        response.on("end", resolve);
        response.on("error", () => resolve());
      });
      cancelRequest = () => {
        req.destroy();
        resolve();
      };
      req.on("error", (error) => (cancelled ? resolve() : reject(error)));
      req.end();
    });
  })();
  return {
    done,
    cancel() {
      cancelled = true;
      cancelRequest();
    },
  };
}
