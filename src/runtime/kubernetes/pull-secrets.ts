/**
 * Registry credentials as image pull secrets. A task whose image's registry one of the run owner's REGISTRY
 * credentials authorises (RunContext.registryAuth, decided as for podman's logins) gets a Secret of type
 * `kubernetes.io/dockerconfigjson` holding that login, named in its pod's `imagePullSecrets`: the kubelet
 * pulls with it. One Secret per run and login (registry and user), labelled with the run's owner and run, so
 * that the session's close and a sweep delete it with the run's pods; the password is only in the Secret,
 * never in a pod, an event or a log.
 */
import type { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import type { RegistryAuth, RegistryAuthority } from "../../port/index.js";
import { apiMessage, isStatus, retrying } from "./api-errors.js";
import { ANNOTATIONS, LABELS, labelValue, pullSecretName, type Owner } from "./names.js";

export const PULL_SECRET_TYPE = "kubernetes.io/dockerconfigjson";
/** Docker Hub as RegistryAuth names it (data/registry-auth.ts), and its key in a docker config as the kubelet's keyring reads it. */
const DOCKER_HUB = "registry-1.docker.io";
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

/** The Secret of one login (deciding only). */
export function pullSecret(auth: RegistryAuth, owner: Owner, namespace: string, processAnnotations: Record<string, string> = {}): V1Secret {
  const key = auth.host === DOCKER_HUB ? DOCKER_HUB_KEY : auth.host;
  const basic = Buffer.from(`${auth.username}:${auth.password}`).toString("base64");
  const config = { auths: { [key]: { username: auth.username, password: auth.password, auth: basic } } };
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: PULL_SECRET_TYPE,
    metadata: {
      name: pullSecretName(owner.runId, auth.host, auth.username),
      namespace,
      labels: { [LABELS.owner]: labelValue(owner.home), [LABELS.run]: labelValue(owner.runId) },
      annotations: { [ANNOTATIONS.runId]: owner.runId, ...processAnnotations },
    },
    data: { ".dockerconfigjson": Buffer.from(JSON.stringify(config)).toString("base64") },
  };
}

/** A run's pull Secrets, each made once, when the first pod whose image needs it is placed. */
export class PullSecrets {
  /** By registry and user: the Secret's name once it is there. */
  private readonly made = new Map<string, Promise<string>>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly owner: Owner,
    private readonly namespace: string,
    private readonly authority: RegistryAuthority | undefined,
    /** The session's process annotations (a sweep tells a live troupe's Secret by them). */
    private readonly annotations: Record<string, string>,
  ) {}

  /** The name of the pull Secret `image` needs, made if it is not yet; undefined when no credential covers it. */
  forImage(image: string | undefined): Promise<string | undefined> {
    const auth = image === undefined ? undefined : this.authority?.(image);
    if (!auth) return Promise.resolve(undefined);
    const key = `${auth.host}\0${auth.username}`;
    let made = this.made.get(key);
    if (!made) {
      made = this.create(auth);
      this.made.set(key, made);
      // A failure is said to the pod that needed it; the next pod asks again.
      made.catch(() => this.made.delete(key));
    }
    return made;
  }

  private async create(auth: RegistryAuth): Promise<string> {
    const body = pullSecret(auth, this.owner, this.namespace, this.annotations);
    const name = body.metadata!.name!;
    try {
      await retrying(() => this.core.createNamespacedSecret({ namespace: this.namespace, body }));
    } catch (error) {
      if (!isStatus(error, 409)) throw new Error(`the API server refused the pull Secret for ${auth.host}: ${apiMessage(error)}`);
      // A resumed run's (or a retried creation's): its login may have changed meanwhile.
      await retrying(() => this.core.replaceNamespacedSecret({ name, namespace: this.namespace, body })).catch((e: unknown) => {
        throw new Error(`the API server refused the pull Secret for ${auth.host}: ${apiMessage(e)}`);
      });
    }
    return name;
  }
}
