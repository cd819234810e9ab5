/**
 * Data between pods through a ReadWriteMany volume the pool names (`--data-volume CLAIM --data-volume-path
 * DIR`), with `troupe run --runtime kubernetes` (the built CLI) on the test cluster and the real S3 server.
 *
 * What is real: the API server, its admission of the pods' PersistentVolumeClaim volumes and sub-paths, the
 * controller manager binding the claim to a PersistentVolume, the scheduler placing pods that use it, troupe's
 * transfers against SeaweedFS. What is played: kwok's nodes mount nothing and run no command, so this test
 * does the pods' part. It stands for a storage that troupe's machine mounts at DIR (an NFS export, say) and
 * the pods mount through the claim: for each released pod it reads the pod's own spec, maps the claim's
 * sub-path at /osmo/data/output (and /osmo/data/input/N) to DIR/SUBPATH, reads the inputs the pod would see
 * there and writes what its command would. The data then has to go where the spec says, through troupe:
 * the producer's output into the consumer's input, a `url:` input downloaded before the consumer's barrier, the
 * consumer's output uploaded to its `url:` after its pod ends.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANNOTATIONS, BARRIER_ANNOTATION } from "../../src/runtime/kubernetes/index.js";
import { ensureBuilt, troupe as runTroupe } from "../run/helpers.js";
import { attemptServer, clientFor, dataCredentialArgs, emptyPrefix } from "../s3/s3-server.js";
import { createDataVolume, createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";

const cluster = givenCluster();
const s3Attempt = attemptServer();
const reason = cluster.reason ?? s3Attempt.reason;
const dir = mkdtempSync(join(tmpdir(), "troupe-k8s-data-"));
/** The volume as troupe's machine sees it (DIR), troupe's home on it. */
const volumePath = join(dir, "volume");
const home = join(volumePath, "home");
const namespace = uniqueNamespace("troupe-data");
const CLAIM = "shared-data";
const PREFIX = `k8s-data-${randomBytes(4).toString("hex")}`;
let config: KubeConfig;
let core: CoreV1Api;
let removeVolume: (() => Promise<void>) | undefined;

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** The built CLI, asynchronous (the test plays the pods meanwhile). */
async function troupe(args: string[], timeoutMs = 120_000, env: Record<string, string> = {}): Promise<Ran> {
  const result = await runTroupe(args, {
    home,
    env: { KUBECONFIG: cluster.cluster!.kubeconfig, NO_COLOR: "1", TROUPE_RUNTIME: undefined, ...env },
    timeoutMs,
  });
  return { code: result.code, out: result.stdout, err: result.stderr };
}

const k8sArgs = (...more: string[]) => [
  "--allow-mount",
  "/srv/troupe-models",
  "--runtime",
  "kubernetes",
  "--namespace",
  namespace,
  "--data-volume",
  CLAIM,
  "--data-volume-path",
  volumePath,
  // Long enough for the test to play each pod's command.
  "--pod-annotations",
  "troupe.test/run-for=3s",
  ...more,
];

/** Where this machine sees what pod `pod` sees at `mountPath` (the claim's sub-path under DIR), or undefined. */
function seenAt(pod: V1Pod, mountPath: string): { dir: string; readOnly: boolean } | undefined {
  const mount = pod.spec!.containers[0]!.volumeMounts?.find((m) => m.mountPath === mountPath);
  if (!mount) return undefined;
  const volume = pod.spec!.volumes?.find((v) => v.name === mount.name);
  if (volume?.persistentVolumeClaim?.claimName !== CLAIM) throw new Error(`${mountPath} of ${pod.metadata!.name} is not on the claim`);
  return { dir: join(volumePath, mount.subPath ?? ""), readOnly: mount.readOnly === true };
}

/**
 * Plays every pod of the namespace once it is released: `act` gets the pod (and does what its command would),
 * until `stop` is called. Returns the pods played.
 */
function playPods(act: (pod: V1Pod, task: string) => void): { stop: () => V1Pod[] } {
  const played = new Map<string, V1Pod>();
  let running = true;
  void (async () => {
    while (running) {
      const pods = await core.listNamespacedPod({ namespace }).catch(() => undefined);
      for (const pod of pods?.items ?? []) {
        const name = pod.metadata!.name!;
        if (played.has(name) || pod.metadata!.annotations?.[BARRIER_ANNOTATION] !== "released") continue;
        played.set(name, pod);
        act(pod, pod.metadata!.annotations![ANNOTATIONS.task] ?? "");
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    stop: () => {
      running = false;
      return [...played.values()];
    },
  };
}

describe.skipIf(reason !== undefined)(`data between pods through a data volume${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const server = s3Attempt.server!;
  const s3 = server ? clientFor(server, server.user) : undefined;

  beforeAll(async () => {
    await ensureBuilt();
    config = kubeConfigFrom(cluster.cluster!.kubeconfig);
    core = config.makeApiClient(CoreV1Api);
    await createNamespace(config, namespace);
    removeVolume = await createDataVolume(config, namespace, CLAIM);
    await core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: { metadata: { name: "one-node" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } },
    });
    mkdirSync(home, { recursive: true });
    const credential = await troupe(dataCredentialArgs(server, "k8s-data", `s3://${server.userBucket}`));
    expect(credential.code, credential.err).toBe(0);
  }, 300_000);

  afterAll(async () => {
    if (config) {
      await deleteNamespace(config, namespace);
      await removeVolume?.();
    }
    if (s3) await emptyPrefix(s3, server.userBucket, PREFIX);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("passes a task's output to the next through the volume, and moves url: inputs and outputs on troupe's side", async () => {
    const bucket = server.userBucket;
    await s3!.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}/in/words.txt`, Body: "from the store\n" }));
    const file = join(dir, "pass.yaml");
    writeFileSync(
      file,
      `workflow:
  name: volume-pass
  tasks:
  - name: producer
    image: alpine
    command: ["sh", "-c", "echo made > {{output}}/made.txt; echo step > /ckpt/step.txt"]
    checkpoint:
    - path: /ckpt
      url: s3://${bucket}/${PREFIX}/ckpt/
      frequency: 1s
    volumeMounts:
    - /srv/troupe-models:/models
  - name: consumer
    image: alpine
    command: ["sh", "-c", "cat {{input:0}}/made.txt {{input:1}}/words.txt > {{output}}/out.txt"]
    inputs:
    - task: producer
    - url: s3://${bucket}/${PREFIX}/in/
    outputs:
    - url: s3://${bucket}/${PREFIX}/out/
`,
    );
    const seen: Record<string, string> = {};
    const player = playPods((pod, task) => {
      const output = seenAt(pod, "/osmo/data/output")!;
      expect(output.readOnly).toBe(false);
      // Writable by the pod's user, whoever its image makes it.
      expect(statSync(output.dir).mode & 0o777).toBe(0o777);
      if (task === "producer") {
        writeFileSync(join(output.dir, "made.txt"), "made by the producer's pod\n");
        // A checkpoint directory outside the output: the attempt's own, on the volume too.
        const checkpoint = seenAt(pod, "/ckpt")!;
        expect(checkpoint.readOnly).toBe(false);
        writeFileSync(join(checkpoint.dir, "step.txt"), "step 1\n");
        // A host path the pool allows (`volumeMounts`): the node's, as OSMO's pod templates mount them.
        const models = pod.spec!.containers[0]!.volumeMounts!.find((m) => m.mountPath === "/models")!;
        seen.models = pod.spec!.volumes!.find((v) => v.name === models.name)!.hostPath!.path;
      }
      if (task === "consumer") {
        const fromProducer = seenAt(pod, "/osmo/data/input/0")!;
        const byName = seenAt(pod, "/osmo/data/input/producer")!;
        const fromStore = seenAt(pod, "/osmo/data/input/1")!;
        expect([fromProducer.readOnly, byName.readOnly, fromStore.readOnly]).toEqual([true, true, true]);
        seen.input = readFileSync(join(fromProducer.dir, "made.txt"), "utf8");
        seen.byName = readFileSync(join(byName.dir, "made.txt"), "utf8");
        seen.store = readFileSync(join(fromStore.dir, "words.txt"), "utf8");
        writeFileSync(join(output.dir, "out.txt"), seen.input + seen.store);
      }
    });
    const run = await troupe(["run", file, ...k8sArgs("--output", "json")]);
    const pods = player.stop();
    expect(run.code, run.err).toBe(0);
    expect(pods.map((p) => p.metadata!.annotations![ANNOTATIONS.task]).sort()).toEqual(["consumer", "producer"]);
    // The consumer's pod mounts the claim and nothing of its node's.
    const consumer = pods.find((p) => p.metadata!.annotations![ANNOTATIONS.task] === "consumer")!;
    expect(consumer.spec!.volumes!.filter((v) => v.hostPath)).toEqual([]);
    expect(seen).toEqual({
      input: "made by the producer's pod\n",
      byName: "made by the producer's pod\n",
      store: "from the store\n",
      models: "/srv/troupe-models",
    });
    const checkpoint = await s3!.send(new GetObjectCommand({ Bucket: bucket, Key: `${PREFIX}/ckpt/step.txt` }));
    expect(await checkpoint.Body!.transformToString()).toBe("step 1\n");
    const uploaded = await s3!.send(new GetObjectCommand({ Bucket: bucket, Key: `${PREFIX}/out/out.txt` }));
    expect(await uploaded.Body!.transformToString()).toBe("made by the producer's pod\nfrom the store\n");
    const record = JSON.parse(run.out) as { status: string };
    expect(record.status).toBe("COMPLETED");
  }, 180_000);

  it("refuses a claim that does not exist, and one pods on several nodes cannot share, before any pod", async () => {
    const file = join(dir, "one.yaml");
    writeFileSync(file, 'workflow:\n  name: one\n  tasks:\n  - name: t\n    image: alpine\n    command: ["true"]\n');
    for (const [claim, says] of [
      ["no-such-claim", `there is no PersistentVolumeClaim no-such-claim in namespace ${namespace}`],
      ["one-node", "is ReadWriteOnce, not ReadWriteMany"],
    ] as const) {
      const args = k8sArgs();
      args[args.indexOf(CLAIM)] = claim;
      const run = await troupe(["run", file, ...args]);
      expect(run.err).toContain(says);
      expect(run.code).not.toBe(0);
    }
    expect((await core.listNamespacedPod({ namespace })).items.filter((p) => !p.metadata!.deletionTimestamp)).toEqual([]);
  }, 120_000);

  it("refuses a home that is not on the volume, saying where it must be", async () => {
    const file = join(dir, "off.yaml");
    writeFileSync(file, 'workflow:\n  name: off\n  tasks:\n  - name: t\n    image: alpine\n    command: ["true"]\n');
    const offHome = join(dir, "elsewhere");
    const run = await troupe(["run", file, ...k8sArgs()], 60_000, { TROUPE_HOME: offHome });
    expect(run.err).toMatch(/is not on the data volume \(claim shared-data/);
    expect(run.err).toContain(`TROUPE_HOME=${volumePath}/troupe`);
    expect(run.code).toBe(2);
    // Refused before anything of a run was made.
    expect(existsSync(join(offHome, "runs"))).toBe(false);
  }, 120_000);

  it("refuses a data volume without the path where this machine sees it, as a usage error", async () => {
    const file = join(dir, "nopath.yaml");
    writeFileSync(file, 'workflow:\n  name: nopath\n  tasks:\n  - name: t\n    image: alpine\n    command: ["true"]\n');
    const run = await troupe(["run", file, "--runtime", "kubernetes", "--namespace", namespace, "--data-volume", CLAIM]);
    expect(run.err).toContain("needs data_volume_path");
    expect(run.code).toBe(2);
  }, 60_000);
});
