/**
 * The Kubernetes runtime's entry: a cluster reached through the user's kubeconfig (KUBECONFIG, else
 * ~/.kube/config, or `kubeconfig:`), at a context and in a namespace. The check reads the nodes (their
 * allocatable resources are the pool's capacity); an API server that cannot be reached or refuses is said so.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { TroupeError } from "../../errors/index.js";
import {
  BARRIER_HOLDERS,
  GANG_SCHEDULERS,
  pathInside,
  checkPodTemplate,
  loadKubernetesRuntime,
  type KubernetesRuntime,
  type NodeCapacity,
  type PodTemplate,
} from "../../runtime/index.js";
import { defineRuntimeKind } from "../kind.js";
import type { KubeConfig } from "@kubernetes/client-node";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ANNOTATION = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?=/;

/** `KEY=VALUE` words (a flag given several times) or a mapping (a pool's YAML). */
const annotations = z
  .union([z.record(z.string(), z.string()), z.array(z.string().regex(ANNOTATION, "KEY=VALUE, KEY an annotation key"))])
  .transform((given) =>
    Array.isArray(given)
      ? Object.fromEntries(given.map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]))
      : given,
  );

/** `KEY=VALUE` words (a flag given several times) or a mapping, for node selectors. */
const keyValues = z
  .union([z.record(z.string(), z.string()), z.array(z.string().regex(/^[^=]+=/, "KEY=VALUE"))])
  .transform((given) =>
    Array.isArray(given)
      ? Object.fromEntries(given.map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]))
      : given,
  );
const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const;
const tolerationObject = z
  .object({
    key: z.string().optional(),
    operator: z.enum(["Exists", "Equal"]).optional(),
    value: z.string().optional(),
    effect: z.enum(TAINT_EFFECTS).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .strict();
/** A toleration as a mapping, or as a flag's word in kubectl's taint syntax: `KEY[=VALUE][:EFFECT]` (no value: Exists). */
const toleration = z.union([
  tolerationObject,
  z
    .string()
    .regex(
      /^[^=:]+(=[^:]*)?(:(NoSchedule|PreferNoSchedule|NoExecute))?$/,
      "KEY[=VALUE][:EFFECT], EFFECT one of NoSchedule, PreferNoSchedule, NoExecute",
    )
    .transform((word) => {
      const [taint, effect] = word.split(":") as [string, (typeof TAINT_EFFECTS)[number] | undefined];
      const equals = taint.indexOf("=");
      const key = equals < 0 ? taint : taint.slice(0, equals);
      return {
        key,
        ...(equals < 0 ? { operator: "Exists" as const } : { operator: "Equal" as const, value: taint.slice(equals + 1) }),
        ...(effect ? { effect } : {}),
      };
    }),
]);
const priorityClass = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "a PriorityClass's name: a DNS subdomain");
/** A mapping, or a YAML file's path (a flag's value) read now; checked by checkPodTemplate. */
const podTemplate = z.union([z.record(z.string(), z.unknown()), z.string().min(1)]).transform((given, context) => {
  if (typeof given !== "string") return checked(given, "pod_template", context);
  const read = yamlFile(given, context);
  return read === z.NEVER ? z.NEVER : checked(read, `pod_template ${given}`, context);
});
/** A YAML file's contents (a flag names the file where a pool's YAML has the mapping itself). */
function yamlFile(file: string, context: z.RefinementCtx): unknown {
  try {
    return parseYaml(readFileSync(resolve(file), "utf8")) as unknown;
  } catch (error) {
    context.addIssue({ code: "custom", message: `cannot read ${file}: ${(error as Error).message}` });
    return z.NEVER;
  }
}
function checked(template: unknown, where: string, context: z.RefinementCtx): PodTemplate {
  try {
    return checkPodTemplate(template, where);
  } catch (error) {
    context.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
}
const platformName = z.string().regex(DNS_LABEL, "a platform name: lower case letters, digits and '-'");
const platform = z
  .object({
    node_selector: keyValues.optional(),
    tolerations: z.array(toleration).optional(),
    priority_class: priorityClass.optional(),
    pod_template: podTemplate.optional(),
  })
  .strict();

const KubernetesOptions = z.object({
  namespace: z.string().regex(DNS_LABEL, "a namespace name: lower case letters, digits and '-', at most 63").optional(),
  context: z.string().min(1).optional(),
  kubeconfig: z
    .string()
    .refine((file) => file.startsWith("/"), "an absolute path")
    .optional(),
  /** Annotations every pod gets (a pod template's). */
  pod_annotations: annotations.optional(),
  /** Whose PodGroups make a group of several members one gang (all placed or none). */
  gang_scheduler: z.enum(GANG_SCHEDULERS).optional(),
  /** The queue of volcano's and KAI's PodGroups. */
  gang_queue: z.string().regex(DNS_LABEL, "a queue name: lower case letters, digits and '-', at most 63").optional(),
  /** The scheduler that places the pods (e.g. the one running scheduler-plugins' coscheduling); the cluster's default otherwise. */
  scheduler_name: z.string().regex(DNS_LABEL, "a scheduler name: lower case letters, digits and '-', at most 63").optional(),
  /** A ReadWriteMany PersistentVolumeClaim through which pods see their data (runtime/kubernetes/data-volume.ts). */
  data_volume: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "a PersistentVolumeClaim's name: a DNS subdomain")
    .optional(),
  /** Every pod's node selector, tolerations and priority class; a platform's add to them. */
  node_selector: keyValues.optional(),
  tolerations: z.array(toleration).optional(),
  priority_class: priorityClass.optional(),
  /** A partial pod every pod is made over (a mapping, or the path of a YAML file holding one). */
  pod_template: podTemplate.optional(),
  /** The platforms a task's resource may name (`platform:`), OSMO's. */
  platforms: z
    .preprocess((given, context) => (typeof given === "string" ? yamlFile(given, context) : given), z.record(platformName, platform))
    .optional(),
  /** The platform of a task whose resource names none. */
  default_platform: z.string().optional(),
  /** Where this machine sees the claim's root (troupe's home is under it). */
  data_volume_path: z
    .string()
    .refine((dir) => dir.startsWith("/"), "an absolute path")
    .optional(),
  /** What holds a pod's command at the barrier: troupe-init from a ConfigMap (any image), or the image's shell. */
  barrier_holder: z.enum(BARRIER_HOLDERS).optional(),
});

interface Cluster {
  config: KubeConfig;
  capacity: NodeCapacity;
  kubernetes: KubernetesRuntime;
}

function unavailable(message: string, hint?: string): { ok: false; error: TroupeError; why: string } {
  return { ok: false, error: new TroupeError("E_K8S_UNAVAILABLE", `the kubernetes runtime: ${message}`, "usage", hint), why: message };
}

export const kubernetesKind = defineRuntimeKind({
  name: "kubernetes",
  summary: "a Kubernetes cluster: one pod per task, placed by the cluster's scheduler",
  options: KubernetesOptions,
  impliedBy: [
    "namespace",
    "context",
    "kubeconfig",
    "pod_annotations",
    "gang_scheduler",
    "gang_queue",
    "scheduler_name",
    "data_volume",
    "data_volume_path",
    "node_selector",
    "tolerations",
    "priority_class",
    "pod_template",
    "platforms",
    "default_platform",
    "barrier_holder",
  ],
  automatic: false,
  async check(options) {
    if ((options.data_volume === undefined) !== (options.data_volume_path === undefined)) {
      const why =
        options.data_volume === undefined
          ? "data_volume_path says where this machine sees the data volume, and data_volume (its claim) is missing"
          : `data_volume ${options.data_volume} needs data_volume_path: where this machine sees the claim's root (troupe's home is to be under it)`;
      return { ok: false, error: new TroupeError("E_K8S_SETTINGS", `the kubernetes runtime: ${why}`, "usage"), why };
    }
    if (options.default_platform !== undefined && !options.platforms?.[options.default_platform]) {
      const why = `default_platform ${options.default_platform} is not one of the pool's platforms (${Object.keys(options.platforms ?? {}).join(", ") || "none"})`;
      return { ok: false, error: new TroupeError("E_K8S_SETTINGS", `the kubernetes runtime: ${why}`, "usage"), why };
    }
    const kubernetes = await loadKubernetesRuntime();
    let config: KubeConfig;
    try {
      config = kubernetes.loadKubeConfig(options.kubeconfig, options.context);
    } catch (error) {
      return unavailable((error as Error).message.replace(/^the kubernetes runtime: /, ""), (error as TroupeError).hint);
    }
    try {
      const nodes = await kubernetes.listNodes(config);
      if (nodes.length === 0) return unavailable(`the cluster at ${config.getCurrentCluster()!.server} has no nodes`);
      return { ok: true, ready: { config, capacity: kubernetes.nodesCapacity(nodes), kubernetes } satisfies Cluster };
    } catch (error) {
      const code = (error as { code?: number }).code;
      const why =
        code === 401
          ? "401: the kubeconfig's credentials were refused"
          : code === 403
            ? "403: the user may not list nodes"
            : (error as Error).message;
      return unavailable(
        `cannot read the nodes of ${config.getCurrentCluster()!.server}: ${why}`,
        "check that `kubectl get nodes` works with this kubeconfig and context",
      );
    }
  },
  capacity: ({ capacity }) => capacity,
  create(options, { config, kubernetes }, { home }) {
    const volumePath = options.data_volume_path === undefined ? undefined : resolve(options.data_volume_path);
    if (volumePath !== undefined && pathInside(volumePath, resolve(home)) === undefined)
      throw new TroupeError(
        "E_K8S_DATA_VOLUME",
        `the kubernetes runtime: troupe's home ${home} is not on the data volume (claim ${options.data_volume}, seen here at ${volumePath}): its runs' pods could not see their data`,
        "usage",
        `keep troupe's home on the volume: TROUPE_HOME=${volumePath}/troupe (a server's --home likewise)`,
      );
    return new kubernetes.KubernetesPool({
      config,
      home,
      namespace: options.namespace ?? kubernetes.contextNamespace(config),
      context: options.context,
      podAnnotations: options.pod_annotations,
      gangScheduler: options.gang_scheduler,
      gangQueue: options.gang_queue,
      schedulerName: options.scheduler_name,
      dataVolume:
        options.data_volume !== undefined && volumePath !== undefined ? { claim: options.data_volume, path: volumePath } : undefined,
      nodeSelector: options.node_selector,
      tolerations: options.tolerations,
      priorityClassName: options.priority_class,
      podTemplate: options.pod_template,
      platforms:
        options.platforms &&
        Object.fromEntries(
          Object.entries(options.platforms).map(([name, p]) => [
            name,
            { nodeSelector: p.node_selector, tolerations: p.tolerations, priorityClassName: p.priority_class, podTemplate: p.pod_template },
          ]),
        ),
      defaultPlatform: options.default_platform,
      barrierHolder: options.barrier_holder,
    });
  },
});
