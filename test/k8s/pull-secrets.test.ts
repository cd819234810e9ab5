/**
 * Registry credentials as image pull secrets (src/runtime/kubernetes/pull-secrets.ts) against the real API
 * server of the test cluster (scripts/k8s/up.sh): a member whose image a REGISTRY login covers gets a Secret of
 * type kubernetes.io/dockerconfigjson (validated by the API server: it refuses one without a valid
 * `.dockerconfigjson`) named in its pod's imagePullSecrets, one Secret per login and run; a member whose image
 * none covers gets none; the password is nowhere but in the Secret; the session's close deletes it, and a
 * sweep deletes a dead troupe's even when it left no pod. No image is pulled here (kwok runs no kubelet).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RegistryAuthority, RunSession } from "../../src/port/index.js";
import { KubernetesPool } from "../../src/runtime/kubernetes/index.js";
import { pullSecret } from "../../src/runtime/kubernetes/pull-secrets.js";
import { homeIdentity } from "../../src/runtime/home-identity.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";
import { Events } from "./pool-events.js";

const attempt = givenCluster();
const home = mkdtempSync(join(tmpdir(), "troupe-k8s-pull-"));
const namespace = uniqueNamespace("troupe-pull");
const PASSWORD = "pull-password-7f3a9c";
let config: KubeConfig;
let core: CoreV1Api;

/** The run owner's REGISTRY logins, as drive/registry-auth.ts decides them: one registry of ours, and Docker Hub. */
const registryAuth: RegistryAuthority = (image) => {
  if (image.startsWith("registry.example.test:5000/")) return { host: "registry.example.test:5000", username: "robot", password: PASSWORD };
  if (image.startsWith("team/")) return { host: "registry-1.docker.io", username: "hubuser", password: PASSWORD };
  return undefined;
};

const sessions: RunSession[] = [];
async function session(runId: string): Promise<RunSession> {
  const s = await new KubernetesPool({ config, home, namespace }).openSession({ runId, dataDir: home, registryAuth });
  sessions.push(s);
  return s;
}

const pullSecretsOf = async (run: string) =>
  (
    await core.listNamespacedSecret({
      namespace,
      labelSelector: `troupe.dev/run=${run}`,
      fieldSelector: "type=kubernetes.io/dockerconfigjson",
    })
  ).items;

describe.skipIf(!attempt.cluster)(
  `image pull secrets from registry credentials ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`,
  () => {
    beforeAll(async () => {
      config = kubeConfigFrom(attempt.cluster!.kubeconfig);
      core = config.makeApiClient(CoreV1Api);
      await createNamespace(config, namespace);
    });
    afterAll(async () => {
      await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
      if (config) await deleteNamespace(config, namespace);
      rmSync(home, { recursive: true, force: true });
    });

    it("gives a pod whose image a login covers a dockerconfigjson Secret, once per login, and deletes it with the run", async () => {
      const s = await session("run-pull");
      const events = new Events();
      const group = s.openGroup({ name: "trio", members: ["private", "again", "public"] }, events);
      const images = {
        private: "registry.example.test:5000/team/app:1",
        again: "registry.example.test:5000/team/tool:2",
        public: "alpine:3.20",
      };
      group.place(Object.entries(images).map(([taskName, image]) => ({ key: `trio/${taskName}/0`, taskName, retryId: 0, image })));
      await events.until(() => events.placements.size + events.exits.size === 3);
      expect([...events.exits]).toEqual([]);

      const secrets = await pullSecretsOf("run-pull");
      expect(secrets).toHaveLength(1);
      const secret = secrets[0]!;
      expect(secret.type).toBe("kubernetes.io/dockerconfigjson");
      expect(secret.metadata!.labels).toMatchObject({ "troupe.dev/run": "run-pull", "troupe.dev/owner": homeIdentity(home) });
      const dockerConfig = JSON.parse(Buffer.from(secret.data![".dockerconfigjson"]!, "base64").toString()) as unknown;
      expect(dockerConfig).toEqual({
        auths: {
          "registry.example.test:5000": {
            username: "robot",
            password: PASSWORD,
            auth: Buffer.from(`robot:${PASSWORD}`).toString("base64"),
          },
        },
      });

      const pods = (await core.listNamespacedPod({ namespace, labelSelector: "troupe.dev/run=run-pull" })).items;
      const byTask = new Map(pods.map((pod) => [pod.metadata!.labels!["troupe.dev/task"]!, pod]));
      expect(byTask.get("private")!.spec!.imagePullSecrets).toEqual([{ name: secret.metadata!.name }]);
      expect(byTask.get("again")!.spec!.imagePullSecrets).toEqual([{ name: secret.metadata!.name }]);
      expect(byTask.get("public")!.spec!.imagePullSecrets).toBeUndefined();
      // The password is in the Secret alone: no pod (its spec, annotations, environment) holds it.
      for (const pod of pods) expect(JSON.stringify(pod)).not.toContain(PASSWORD);

      await s.close();
      expect(await pullSecretsOf("run-pull")).toHaveLength(0);
    }, 60_000);

    it("keys Docker Hub's login as the kubelet's keyring reads it", () => {
      const secret = pullSecret({ host: "registry-1.docker.io", username: "u", password: "p" }, { home: "h", runId: "r" }, namespace);
      const dockerConfig = JSON.parse(Buffer.from(secret.data![".dockerconfigjson"]!, "base64").toString()) as { auths: object };
      expect(Object.keys(dockerConfig.auths)).toEqual(["https://index.docker.io/v1/"]);
    });

    it("is refused by the API server when its content is not a docker config (the check the Secret passes above)", async () => {
      const body = pullSecret({ host: "r.test", username: "u", password: "p" }, { home: "h", runId: "r" }, namespace);
      body.data = { ".dockerconfigjson": Buffer.from("not json").toString("base64") };
      await expect(core.createNamespacedSecret({ namespace, body })).rejects.toMatchObject({ code: 422 });
    });

    it("sweeps a dead troupe's pull Secret even when it left no pod", async () => {
      const body = pullSecret(
        { host: "r.test", username: "u", password: "p" },
        { home: homeIdentity(home), runId: "run-dead" },
        namespace,
        {
          "troupe.dev/process": "999999999:1",
        },
      );
      await core.createNamespacedSecret({ namespace, body });
      const removed = await new KubernetesPool({ config, home, namespace }).sweep();
      expect(removed).toEqual([`kubernetes secret ${namespace}/${body.metadata!.name!}`]);
      expect(await pullSecretsOf("run-dead")).toHaveLength(0);
    }, 30_000);
  },
);
