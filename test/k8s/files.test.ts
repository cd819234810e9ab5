/**
 * A task's `files:` on Kubernetes (src/runtime/kubernetes/files.ts): one Secret per attempt, each file mounted
 * at its path by subPath with its mode; too much for a Secret, or a path that is no file's, refused with what
 * and where; and the Secret and the pod that mounts it accepted by the real API server (dryRun=All). What the
 * container would then see cannot be shown here: no kubelet mounts anything (docs/k8s-notes.md).
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TroupeError } from "../../src/errors/index.js";
import type { TaskLaunch } from "../../src/port/index.js";
import {
  attemptPod,
  FILES_VOLUME,
  filesMounts,
  filesSecret,
  filesSecretName,
  SECRET_DATA_LIMIT,
  type Owner,
} from "../../src/runtime/kubernetes/index.js";
import { deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace, type K8sCluster } from "./k8s-cluster.js";

const OWNER: Owner = { home: "3f2a9c1b7d4e", runId: "train-model-12" };

function launch(files: TaskLaunch["files"]): TaskLaunch {
  return {
    key: "train/worker/0",
    taskName: "worker",
    groupName: "train",
    retryId: 0,
    image: "ubuntu:24.04",
    argv: ["/bin/sh", "-c", "cat /etc/app/config.yaml"],
    env: {},
    files,
    outputDir: "/tmp/out",
    inputDirs: [],
    address: "",
    hosts: {},
    logPath: "/tmp/log",
  };
}

const FILES: TaskLaunch["files"] = [
  { path: "/etc/app/config.yaml", contents: Buffer.from("lr: 0.1\n") },
  { path: "/root/.creds/token", contents: Buffer.from([0, 1, 2, 255]), mode: 0o400 },
];

describe("files as a Secret", () => {
  it("puts every file in one Secret of the attempt, byte for byte", () => {
    const secret = filesSecret(launch(FILES), OWNER, "ns")!;
    expect(secret.metadata?.name).toBe(filesSecretName(OWNER, launch(FILES)));
    expect(secret.metadata?.labels?.["troupe.dev/task"]).toBe("worker");
    expect(Object.values(secret.data!).map((b64) => Buffer.from(b64, "base64"))).toEqual(FILES.map((f) => f.contents));
    expect(secret.immutable).toBe(true);
    expect(filesSecret(launch([]), OWNER, "ns")).toBeUndefined();
  });

  it("mounts each file at its own path (subPath: the rest of its directory stays) with its mode", () => {
    const { volumes, mounts } = filesMounts(launch(FILES), OWNER);
    expect(mounts).toEqual([
      { name: FILES_VOLUME, mountPath: "/etc/app/config.yaml", subPath: "file-0", readOnly: true },
      { name: FILES_VOLUME, mountPath: "/root/.creds/token", subPath: "file-1", readOnly: true },
    ]);
    expect(volumes[0]!.secret?.items?.map((i) => i.mode)).toEqual([0o644, 0o400]);
    const pod = attemptPod(launch(FILES), OWNER, { namespace: "ns" });
    expect(pod.spec?.volumes).toEqual(volumes);
    expect(pod.spec?.containers[0]?.volumeMounts).toEqual(mounts);
    expect(attemptPod(launch([]), OWNER, { namespace: "ns" }).spec?.volumes).toBeUndefined();
  });

  it("refuses more than a Secret holds, and a path that is no file's, saying which task", () => {
    const big = launch([{ path: "/data/blob", contents: Buffer.alloc(SECRET_DATA_LIMIT + 1) }]);
    expect(() => filesSecret(big, OWNER, "ns")).toThrow(TroupeError);
    expect(() => filesSecret(big, OWNER, "ns")).toThrow(/task worker: its files take 1048577 bytes; .* at most 1048576/);
    try {
      filesSecret(launch([{ path: "etc/relative", contents: Buffer.from("x") }]), OWNER, "ns");
    } catch (error) {
      expect((error as TroupeError).code).toBe("E_K8S_FILE_PATH");
      expect((error as Error).message).toBe('task worker: file path "etc/relative" is not an absolute file path');
    }
    expect.assertions(4);
  });
});

const attempt = givenCluster();
if (attempt.reason) console.warn(`test/k8s/files.test.ts (API server part) skipped: ${attempt.reason}`);

describe.skipIf(!attempt.cluster)(`files on a real API server (${attempt.reason ?? "scripts/k8s/up.sh"})`, { timeout: 60_000 }, () => {
  const cluster = attempt.cluster as K8sCluster;
  const namespace = uniqueNamespace("troupe-files-test");
  let admin: KubeConfig;
  let core: CoreV1Api;

  beforeAll(async () => {
    admin = kubeConfigFrom(cluster.kubeconfig);
    core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    if (admin) await deleteNamespace(admin, namespace);
  }, 90_000);

  it("accepts the Secret and the pod that mounts it (dryRun=All)", async () => {
    const secret = await core.createNamespacedSecret({ namespace, body: filesSecret(launch(FILES), OWNER, namespace)!, dryRun: "All" });
    expect(Buffer.from(secret.data!["file-1"]!, "base64")).toEqual(FILES[1]!.contents);
    const pod = await core.createNamespacedPod({ namespace, body: attemptPod(launch(FILES), OWNER, { namespace }), dryRun: "All" });
    expect(pod.spec?.containers[0]?.volumeMounts?.map((m) => m.mountPath)).toEqual(["/etc/app/config.yaml", "/root/.creds/token"]);
  });

  it("would be refused by the API server past its limit too (the same 1 MiB)", async () => {
    const body = filesSecret(launch([{ path: "/data/blob", contents: Buffer.alloc(SECRET_DATA_LIMIT) }]), OWNER, namespace)!;
    await expect(core.createNamespacedSecret({ namespace, body, dryRun: "All" })).resolves.toBeDefined();
    body.data!["file-1"] = Buffer.from("x").toString("base64");
    await expect(core.createNamespacedSecret({ namespace, body, dryRun: "All" })).rejects.toMatchObject({ code: 422 });
  });
});
