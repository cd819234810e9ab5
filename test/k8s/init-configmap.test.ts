/**
 * troupe-init's ConfigMap (src/runtime/kubernetes/init-binary.ts, init-holder.ts) against the real API server
 * of the test cluster: the built binary fits (the API server's own 1 MiB limit, checked at the boundary), made
 * once per namespace and reused by another troupe (which says it uses it), refused where the user may not make
 * it (the member fails saying to hold pods with the shell), and swept only once no pod uses it and no troupe
 * has said so lately. The pods that mount it, run on kwok and released: kubernetes-pool.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunSession } from "../../src/port/index.js";
import {
  CONFIG_MAP_DATA_LIMIT,
  ENSURE_EVERY_MS,
  ENSURED_ANNOTATION,
  INIT_LABEL,
  InitBinaries,
  initConfigMap,
  KubernetesPool,
  STALE_MS,
} from "../../src/runtime/kubernetes/index.js";
import { builtHelper } from "../../src/runtime/native-helpers.js";
import { ensureBuilt } from "../run/helpers.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, tokenKubeConfig, uniqueNamespace } from "./k8s-cluster.js";
import { Events } from "./pool-events.js";

const attempt = givenCluster();
const home = mkdtempSync(join(tmpdir(), "troupe-k8s-init-"));
const namespace = uniqueNamespace("troupe-init-cm");
let config: KubeConfig;
let core: CoreV1Api;
const sessions: RunSession[] = [];

const member = (key: string) => ({ key, taskName: key.split("/")[1]!, retryId: 0, image: "gcr.io/distroless/static" });

describe.skipIf(!attempt.cluster)(`troupe-init's ConfigMap ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`, () => {
  beforeAll(async () => {
    await ensureBuilt();
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    core = config.makeApiClient(CoreV1Api);
    await createNamespace(config, namespace);
  }, 240_000);
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
    if (config) await deleteNamespace(config, namespace);
    rmSync(home, { recursive: true, force: true });
  });

  it("carries the built binary whole, is made once per namespace and reused by another troupe, which says it uses it", async () => {
    const binary = readFileSync(builtHelper("troupe-init")!);
    expect(binary.length).toBeLessThan(CONFIG_MAP_DATA_LIMIT);
    const first = await new InitBinaries(core, builtHelper("troupe-init")).ensure(namespace);
    expect(first.configMap).toMatch(/^troupe-init-[0-9a-f]{16}$/);
    const made = await core.readNamespacedConfigMap({ name: first.configMap, namespace });
    expect(Buffer.from(made.binaryData!["troupe-init"]!, "base64").equals(binary)).toBe(true);
    expect(made.immutable).toBe(true);
    expect(made.metadata!.labels).toMatchObject({ "troupe.dev/component": "init", [INIT_LABEL]: first.hash });
    // Immutable: the API server itself refuses to change what it carries.
    await expect(
      core.replaceNamespacedConfigMap({ name: first.configMap, namespace, body: { ...made, binaryData: { "troupe-init": "AA==" } } }),
    ).rejects.toMatchObject({ code: 422 });

    // Another troupe of the same build, an hour later: the same ConfigMap (409, then its word).
    const later = Date.now() + 3_600_000;
    const second = await new InitBinaries(core, builtHelper("troupe-init"), () => later).ensure(namespace);
    expect(second).toEqual(first);
    const reused = await core.readNamespacedConfigMap({ name: first.configMap, namespace });
    expect(reused.metadata!.annotations![ENSURED_ANNOTATION]).toBe(new Date(later).toISOString());
    const all = await core.listNamespacedConfigMap({ namespace, labelSelector: "troupe.dev/component=init" });
    expect(all.items).toHaveLength(1);
  }, 30_000);

  it("says again that it uses the ConfigMap once its hour is up, not before, and makes it again if it was swept meanwhile", async () => {
    const own = uniqueNamespace("troupe-init-renew");
    await createNamespace(config, own);
    try {
      let now = Date.now();
      const inits = new InitBinaries(core, builtHelper("troupe-init"), () => now);
      const { configMap: name } = await inits.ensure(own);
      const said = async () => (await core.readNamespacedConfigMap({ name, namespace: own })).metadata!.annotations![ENSURED_ANNOTATION];
      const first = await said();
      now += ENSURE_EVERY_MS - 60_000;
      await inits.ensure(own);
      expect(await said()).toBe(first); // within its hour: no request at all
      now += 120_000;
      await inits.ensure(own);
      expect(await said()).toBe(new Date(now).toISOString());
      // Swept behind its back: made again at the next pods after its hour.
      await core.deleteNamespacedConfigMap({ name, namespace: own });
      now += ENSURE_EVERY_MS + 1;
      await inits.ensure(own);
      expect(await said()).toBe(new Date(now).toISOString());
    } finally {
      await deleteNamespace(config, own);
    }
  }, 90_000);

  it("refuses a binary larger than a ConfigMap holds before the API server would (whose limit it is), saying what to do", async () => {
    const big = Buffer.alloc(CONFIG_MAP_DATA_LIMIT + 1);
    expect(() => initConfigMap(big, "0000000000000000", namespace, new Date())).toThrow(
      expect.objectContaining({ code: "E_K8S_INIT_TOO_LARGE", hint: expect.stringContaining("barrier_holder: shell") }),
    );
    // The API server's limit is the same: exactly 1 MiB passes, a byte more is refused.
    const sized = (bytes: number) => ({
      metadata: { name: "sized" },
      binaryData: { "troupe-init": Buffer.alloc(bytes).toString("base64") },
    });
    await core.createNamespacedConfigMap({ namespace, body: sized(CONFIG_MAP_DATA_LIMIT), dryRun: "All" });
    const refused = await core.createNamespacedConfigMap({ namespace, body: sized(CONFIG_MAP_DATA_LIMIT + 1), dryRun: "All" }).then(
      () => undefined,
      (error: { code: number; body: string }) => error,
    );
    expect(refused?.code).toBe(422);
    expect(refused?.body).toMatch(/may not be more than 1048576 bytes/);

    // A pool whose troupe-init is that large: its session does not open (no pod could run), saying so.
    const file = join(home, "big-init");
    writeFileSync(file, big);
    await expect(
      new KubernetesPool({ config, home, namespace, initBinary: file }).openSession({ runId: "run-big-init", dataDir: home }),
    ).rejects.toMatchObject({
      code: "E_K8S_INIT_TOO_LARGE",
      message: expect.stringContaining("troupe-init takes 1048577 bytes"),
    });
    // The shell holder needs no troupe-init.
    sessions.push(
      await new KubernetesPool({ config, home, namespace, initBinary: file, barrierHolder: "shell" }).openSession({
        runId: "run-big-shell",
        dataDir: home,
      }),
    );
  }, 30_000);

  it("refuses a run where troupe-init was not built, and fails a member where the user may not make ConfigMaps, saying why and what to do", async () => {
    await expect(
      new KubernetesPool({ config, home, namespace, initBinary: undefined }).openSession({ runId: "run-unbuilt", dataDir: home }),
    ).rejects.toMatchObject({
      code: "E_K8S_NO_INIT",
      kind: "usage",
      message: expect.stringContaining("troupe-init, which was not built"),
      hint: expect.stringContaining("barrier_holder: shell"),
    });

    const cluster = attempt.cluster!;
    const limited = await new KubernetesPool({
      config: kubeConfigFrom(cluster.limitedKubeconfig),
      home,
      namespace: cluster.limitedNamespace,
    }).openSession({ runId: "run-init-403", dataDir: home });
    sessions.push(limited);
    const refused = new Events();
    limited.openGroup({ name: "g", members: ["a"] }, refused).place([member("g/a/0")]);
    await refused.until(() => refused.exits.size === 1);
    expect(refused.exits.get("g/a/0")).toMatchObject({
      kind: "start-failed",
      message: expect.stringMatching(
        /^the API server refused troupe-init's ConfigMap troupe-limited\/troupe-init-[0-9a-f]{16}: 403: .*cannot create resource "configmaps".*barrier_holder: shell/,
      ),
    });
  }, 30_000);

  it("refuses a ConfigMap of its name that does not hold its binary (made by someone else): no pod runs it", async () => {
    const other = uniqueNamespace("troupe-init-forged");
    await createNamespace(config, other);
    try {
      const inits = new InitBinaries(core, builtHelper("troupe-init"));
      const { hash } = inits.load();
      await core.createNamespacedConfigMap({
        namespace: other,
        body: initConfigMap(Buffer.from("#!/bin/sh\nsteal\n"), hash, other, new Date()),
      });
      await expect(inits.ensure(other)).rejects.toThrow(
        `the API server holds a ConfigMap ${other}/troupe-init-${hash} of troupe-init's name that is not this troupe-init (not made by troupe?)`,
      );
    } finally {
      await deleteNamespace(config, other);
    }
  }, 90_000);

  it("a sweep by a user who may not list ConfigMaps (a shell-holder user) sweeps the rest all the same", async () => {
    // A service account that may list pods and Secrets here, and nothing of ConfigMaps.
    const rbac = config.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "no-configmaps" } } });
    await rbac.createNamespacedRole({
      namespace,
      body: { metadata: { name: "no-configmaps" }, rules: [{ apiGroups: [""], resources: ["pods", "secrets"], verbs: ["list"] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: "no-configmaps" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "no-configmaps" },
        subjects: [{ kind: "ServiceAccount", name: "no-configmaps", namespace }],
      },
    });
    const token = await core.createNamespacedServiceAccountToken({
      name: "no-configmaps",
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const user = tokenKubeConfig(attempt.cluster!, token.status!.token);
    await expect(user.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace })).rejects.toMatchObject({ code: 403 });
    // RBAC's cache may take a moment to know the binding.
    let swept: string[] | undefined;
    for (let i = 0; i < 50 && swept === undefined; i++)
      swept = await new KubernetesPool({ config: user, home, namespace, barrierHolder: "shell" })
        .sweep()
        .catch(async (error: { code?: number; body?: string }) => {
          if (!/cannot list resource "(pods|secrets)"/.test(error.body ?? "")) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
          return undefined;
        });
    expect(swept).toEqual([]);
  }, 30_000);

  it("a sweep deletes another build's ConfigMap once no pod uses it and no troupe has said so lately, never this build's", async () => {
    const stale = new Date(Date.now() - STALE_MS - 60_000);
    const other = (hash: string, said: Date) =>
      core.createNamespacedConfigMap({ namespace, body: initConfigMap(Buffer.from(`build ${hash}`), hash, namespace, said) });
    await other("aaaaaaaaaaaaaaaa", stale); // unused and stale: swept
    await other("bbbbbbbbbbbbbbbb", stale); // stale, but a pod uses it
    await other("cccccccccccccccc", new Date()); // a troupe said it uses it a moment ago
    // This build's, said long ago: a troupe of this build uses it (and makes it again if need be).
    await new InitBinaries(core, builtHelper("troupe-init"), () => stale.getTime()).ensure(namespace);
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "uses-b", labels: { [INIT_LABEL]: "bbbbbbbbbbbbbbbb" } },
        spec: { restartPolicy: "Never", containers: [{ name: "task", image: "alpine" }] },
      },
    });
    const pool = new KubernetesPool({ config, home, namespace });
    expect(await pool.sweep()).toEqual([`kubernetes configmap ${namespace}/troupe-init-aaaaaaaaaaaaaaaa`]);
    await core.deleteNamespacedPod({ name: "uses-b", namespace, gracePeriodSeconds: 0 });
    for (
      let i = 0;
      i < 100 && (await core.listNamespacedPod({ namespace, labelSelector: `${INIT_LABEL}=bbbbbbbbbbbbbbbb` })).items.length;
      i++
    )
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await pool.sweep()).toEqual([`kubernetes configmap ${namespace}/troupe-init-bbbbbbbbbbbbbbbb`]);
    const left = await core.listNamespacedConfigMap({ namespace, labelSelector: "troupe.dev/component=init" });
    const current = await new InitBinaries(core, builtHelper("troupe-init")).ensure(namespace);
    expect(left.items.map((m) => m.metadata!.name).sort()).toEqual([current.configMap, "troupe-init-cccccccccccccccc"].sort());
  }, 40_000);
});
