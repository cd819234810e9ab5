/**
 * troupe-init's ConfigMap in a namespace (the doing part of init-holder.ts): made once and reused, by every
 * pod of every run and every troupe of the same build (its name is the binary's hash, it is immutable).
 *
 * Who cleans it: a pool's sweep (every `troupe run`, a server's start) deletes a troupe-init ConfigMap of
 * another hash (an older or newer troupe's) once no pod in the namespace carries that hash (INIT_LABEL) and
 * no troupe has said it uses it for STALE_MS: a troupe says so (ENSURED_ANNOTATION) when it makes or finds
 * the ConfigMap, and again before it makes pods once ENSURE_EVERY_MS (half of STALE_MS) has passed, so a
 * ConfigMap is never deleted under a troupe about to make a pod with it; the deletion is conditional on the
 * resource version the sweep saw, so a troupe's word in between wins. A ConfigMap deleted under an idle
 * troupe is made again the next time it makes pods. The current build's own is never swept by that build.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { CoreV1Api } from "@kubernetes/client-node";
import { TroupeError } from "../../errors/index.js";
import { apiMessage, isStatus, retrying } from "./api-errors.js";
import {
  checkInitSize,
  ENSURED_ANNOTATION,
  INIT_COMPONENT,
  INIT_COMPONENT_LABEL,
  INIT_KEY,
  initConfigMap,
  initConfigMapName,
  INIT_LABEL,
  nodeArch,
  type InitRef,
} from "./init-holder.js";

/** How long a troupe's word that it uses a ConfigMap holds for itself. */
export const ENSURE_EVERY_MS = 60 * 60 * 1000;
/** How long after the last word a ConfigMap that no pod uses may be swept. */
export const STALE_MS = 2 * ENSURE_EVERY_MS;

interface Binary {
  bytes: Buffer;
  hash: string;
}

export class InitBinaries {
  private binary: Binary | undefined;
  private readonly ensured = new Map<string, { until: number; ref: Promise<InitRef> }>();

  /** `path`: the built troupe-init (undefined: not built). `now` moves the clock (tests). */
  constructor(
    private readonly core: CoreV1Api,
    private readonly path: string | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** The binary and its hash, read once; a troupe without it, or with one too large, says what to do. */
  load(): Binary {
    if (this.binary) return this.binary;
    if (!this.path)
      throw new TroupeError(
        "E_K8S_NO_INIT",
        "the kubernetes runtime holds pods with troupe-init, which was not built (it needs a C compiler with a static libc: `npm run build`)",
        "usage",
        "or hold pods with the image's shell instead: barrier_holder: shell (--barrier-holder shell)",
      );
    const bytes = readFileSync(this.path);
    checkInitSize(bytes);
    return (this.binary = { bytes, hash: createHash("sha256").update(bytes).digest("hex").slice(0, 16) });
  }

  /** troupe-init's ConfigMap in `namespace`, made if need be, and this troupe's word that it uses it. */
  ensure(namespace: string): Promise<InitRef> {
    const memo = this.ensured.get(namespace);
    if (memo && memo.until > this.now()) return memo.ref;
    const ref = this.make(namespace);
    this.ensured.set(namespace, { until: this.now() + ENSURE_EVERY_MS, ref });
    // A refusal is not kept: the next pod asks again.
    ref.catch(() => this.ensured.delete(namespace));
    return ref;
  }

  private async make(namespace: string): Promise<InitRef> {
    const { bytes, hash } = this.load();
    const name = initConfigMapName(hash);
    const refused = (error: unknown) =>
      new Error(
        `the API server refused troupe-init's ConfigMap ${namespace}/${name}: ${apiMessage(error)} (where ConfigMaps cannot carry it, hold pods with the image's shell: barrier_holder: shell)`,
      );
    const body = initConfigMap(bytes, hash, namespace, new Date(this.now()));
    for (let tries = 0; ; tries++) {
      try {
        await retrying(() => this.core.createNamespacedConfigMap({ namespace, body }));
        break;
      } catch (error) {
        if (!isStatus(error, 409)) throw refused(error);
      }
      // There already (another run's, another troupe's): say this troupe uses it too.
      const patch = [{ op: "add", path: "/metadata/annotations", value: { [ENSURED_ANNOTATION]: new Date(this.now()).toISOString() } }];
      let found;
      try {
        found = await retrying(() => this.core.patchNamespacedConfigMap({ name, namespace, body: patch }));
      } catch (error) {
        // Swept between the two: made again (once).
        if (!isStatus(error, 404) || tries > 0) throw refused(error);
        continue;
      }
      // Every pod runs what it holds: only this very binary (the answer brings it; no request more).
      if (!Buffer.from(found.binaryData?.[INIT_KEY] ?? "", "base64").equals(bytes))
        throw new Error(
          `the API server holds a ConfigMap ${namespace}/${name} of troupe-init's name that is not this troupe-init (not made by troupe?): no pod is made with it; delete it, and troupe makes it again`,
        );
      break;
    }
    return { configMap: name, hash, arch: nodeArch() };
  }

  /** Deletes the troupe-init ConfigMaps of other builds that nothing uses any more (see above); says which. */
  async sweep(namespace: string): Promise<string[]> {
    let current: string | undefined;
    try {
      current = this.load().hash;
    } catch {
      current = undefined; // not built: every troupe-init ConfigMap is another build's
    }
    // Not this build's: the common case lists nothing (a ConfigMap is about a megabyte).
    const labelSelector = `${INIT_COMPONENT_LABEL}=${INIT_COMPONENT}${current ? `,${INIT_LABEL}!=${current}` : ""}`;
    const maps = await this.core.listNamespacedConfigMap({ namespace, labelSelector });
    const removed: string[] = [];
    for (const map of maps.items) {
      const { name, labels, annotations, resourceVersion } = map.metadata!;
      const said = Date.parse(annotations?.[ENSURED_ANNOTATION] ?? "");
      if (Number.isFinite(said) && this.now() - said < STALE_MS) continue;
      const hash = labels?.[INIT_LABEL];
      if (!hash) continue;
      const users = await this.core.listNamespacedPod({ namespace, labelSelector: `${INIT_LABEL}=${hash}`, limit: 1 });
      if (users.items.length > 0) continue;
      try {
        await this.core.deleteNamespacedConfigMap({ name: name!, namespace, body: { preconditions: { resourceVersion } } });
        removed.push(`kubernetes configmap ${namespace}/${name}`);
      } catch (error) {
        // 409: a troupe said it uses it since (its resource version changed); 404: another sweep's.
        if (!isStatus(error, 409) && !isStatus(error, 404)) throw error;
      }
    }
    return removed;
  }
}
