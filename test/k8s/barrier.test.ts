/**
 * The barrier on Kubernetes (src/runtime/kubernetes/barrier.ts). The holder a pod's container starts is run
 * here by a real /bin/sh, over directories standing in for the pod's two volumes (the downward API file of its
 * annotations, the launch Secret's files): no pod runs a command on this machine (kwok has no containers), so
 * this is where the protocol itself is shown to hold the command until both the launch and the release are
 * there. Against the test cluster, kwok's stages (scripts/k8s/kwok-stages.yaml) honour the same annotation:
 * a held pod's simulated command does not end until it is released.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskLaunch } from "../../src/port/index.js";
import { BARRIER_ANNOTATION, holderScript, launchScript } from "../../src/runtime/kubernetes/index.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function launch(root: string): TaskLaunch {
  return {
    key: "g/t/0",
    taskName: "t",
    groupName: "g",
    retryId: 0,
    image: "alpine",
    argv: ["/bin/sh", "-c", `echo "$GREETING it's $(cat ${root}/files/conf.txt)" > ${root}/out.txt; exit 7`],
    env: { GREETING: "hello 'quoted' $HOME", PATH: process.env.PATH ?? "/usr/bin:/bin" },
    files: [{ path: `${root}/files/conf.txt`, contents: Buffer.from("configured"), mode: 0o600 }],
    outputDir: "",
    inputDirs: [],
    address: "",
    hosts: {},
    logPath: "",
  };
}

describe("the holder", () => {
  it("waits for the launch and the release, then puts the files in place and execs the command with exactly its environment", async () => {
    const root = mkdtempSync(join(tmpdir(), "troupe-holder-"));
    dirs.push(root);
    const podInfo = join(root, "pod");
    const launchDir = join(root, "launch");
    mkdirSync(podInfo);
    writeFileSync(join(podInfo, "annotations"), `${BARRIER_ANNOTATION}="held"\n`);
    const child = spawn("/bin/sh", ["-c", holderScript(podInfo, launchDir)], { stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let done = false;
    void exited.then(() => (done = true));
    // Held: no launch yet, then the launch but no release.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(done).toBe(false);
    const task = launch(root);
    mkdirSync(launchDir);
    writeFileSync(join(launchDir, "file-0"), task.files[0]!.contents);
    writeFileSync(join(launchDir, "launch.sh"), launchScript(task, launchDir));
    chmodSync(join(launchDir, "launch.sh"), 0o500);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(done).toBe(false);
    // The kubelet rewrites the downward API file when the annotation changes.
    writeFileSync(join(podInfo, "annotations"), `${BARRIER_ANNOTATION}="released"\ntroupe.dev/run-id="r"\n`);
    expect(await exited).toBe(7);
    expect(readFileSync(join(root, "out.txt"), "utf8")).toBe("hello 'quoted' $HOME it's configured\n");
    expect(statSync(join(root, "files/conf.txt")).mode & 0o777).toBe(0o600);
  }, 20_000);
});

const attempt = givenCluster();
describe.skipIf(!attempt.cluster)(`kwok honours the barrier ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`, () => {
  let config: KubeConfig;
  let core: CoreV1Api;
  const namespace = uniqueNamespace("troupe-barrier");
  beforeAll(async () => {
    config = kubeConfigFrom(attempt.cluster!.kubeconfig);
    core = config.makeApiClient(CoreV1Api);
    await createNamespace(config, namespace);
  });
  afterAll(async () => {
    if (config) await deleteNamespace(config, namespace);
  });

  it("a held pod runs until it is released, and its run-for counts from the release", async (context) => {
    const annotations = { [BARRIER_ANNOTATION]: "held", "troupe.test/run-for": "300ms", "troupe.test/exit-code": "4" };
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: "held", annotations }, spec: { restartPolicy: "Never", containers: [{ name: "task", image: "alpine" }] } },
    });
    const phase = async () => (await core.readNamespacedPod({ name: "held", namespace })).status?.phase;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const held = await phase();
    // A kwok started before scripts/k8s/kwok-stages.yaml learnt the barrier (up.sh of an older checkout).
    if (held === "Failed") context.skip("the running kwok's stages predate the barrier: restart the test cluster's kwok (down.sh; up.sh)");
    expect(held).toBe("Running");
    const patch = [{ op: "replace", path: `/metadata/annotations/${BARRIER_ANNOTATION.replace("/", "~1")}`, value: "released" }];
    await core.patchNamespacedPod({ name: "held", namespace, body: patch });
    for (let i = 0; i < 50 && (await phase()) === "Running"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    const pod = await core.readNamespacedPod({ name: "held", namespace });
    expect(pod.status!.phase).toBe("Failed");
    expect(pod.status!.containerStatuses![0]!.state!.terminated!.exitCode).toBe(4);
  }, 30_000);
});
