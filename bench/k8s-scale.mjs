#!/usr/bin/env node
// Benchmark: troupe on Kubernetes (issue 16). After `npm run build`, with the test cluster up
// (`eval "$(bash scripts/k8s/up.sh)"`, which exports TROUPE_K8S_KUBECONFIG):
//   node bench/k8s-scale.mjs [--tasks 1000] [--rounds 1] [--max-parallel N] [--run-for 1s] [--troupe-only]
// N independent single-pod tasks (each its own group), each pod running 1 s (--run-for) once released (the test cluster's
// `troupe.test/run-for` annotation, which kwok reads; kwok plays the kubelets, no container runs), in a
// namespace of the benchmark's own, three ways, timed in the same script:
// 1. `troupe run --runtime kubernetes` at its default concurrency (or --max-parallel N): from the command's start to
//    every pod created (seen by a watch of this script's) and to the run's end (every pod ended, the run's objects
//    deleted); troupe's peak resident memory and open file descriptors (sampled from /proc every 200 ms).
// 2. The client alone (@kubernetes/client-node, as troupe uses it): the same number of bare pods (same image,
//    annotations, restartPolicy Never) created 50 requests at a time, then waited for by a watch until every one
//    has ended: the floor for "create N pods and see them end".
// 3. `kubectl apply -f` of the same bare pods as one manifest (when kubectl is on PATH): to every pod created
//    (the issue's yardstick), and to every pod ended by the same watch.
// Per-pod overhead = (troupe's time to every pod ended - the client's) / N. --troupe-only: only the first (to
// measure troupe's footprint with many live tasks: a long --run-for keeps them all running).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig, Watch } from "@kubernetes/client-node";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg("--tasks", 1000);
const rounds = arg("--rounds", 1);
const maxParallel = arg("--max-parallel", undefined);
const troupeOnly = process.argv.includes("--troupe-only");
const kubeconfig = process.env.TROUPE_K8S_KUBECONFIG;
if (!kubeconfig) {
  console.error('k8s-scale: no test cluster: eval "$(bash scripts/k8s/up.sh)" first');
  process.exit(2);
}
const troupe = new URL("../bin/troupe", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "troupe-k8s-bench-"));
const config = new KubeConfig();
config.loadFromFile(kubeconfig);
const core = config.makeApiClient(CoreV1Api);
const namespace = `bench-k8s-${process.pid}`;
const RUN_FOR = process.argv.includes("--run-for") ? process.argv[process.argv.indexOf("--run-for") + 1] : "1s";
const hasKubectl = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** Watches the namespace's pods: when the Nth was first seen, and when the Nth had ended. */
async function watchPods(t0) {
  const seen = new Set();
  const ended = new Set();
  let createdAt;
  let endedAt;
  let wake;
  let controller;
  let stopped = false;
  const onPod = (_type, pod) => {
    const name = pod.metadata.name;
    seen.add(name);
    if (seen.size >= N && createdAt === undefined) createdAt = performance.now() - t0;
    const phase = pod.status?.phase;
    const terminated = pod.status?.containerStatuses?.some((s) => s.state?.terminated);
    if (phase === "Succeeded" || phase === "Failed" || terminated) ended.add(name);
    if (ended.size >= N && endedAt === undefined) endedAt = performance.now() - t0;
    wake?.();
  };
  // A watch the API server ends (its timeout, a busy machine) is started again: its ADDED events bring every pod back.
  const start = async () => {
    controller = await new Watch(config).watch(`/api/v1/namespaces/${namespace}/pods`, {}, onPod, () => {
      if (!stopped) setTimeout(() => void start().catch((error) => console.error(`k8s-scale: the watch: ${error.message}`)), 200);
    });
  };
  await start();
  return {
    created: () => createdAt,
    ended: () => endedAt,
    async until(what, ms = 900_000) {
      const deadline = Date.now() + ms;
      while (what() === undefined) {
        if (Date.now() > deadline) throw new Error(`not within ${ms} ms (seen ${seen.size}, ended ${ended.size})`);
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, 500);
        });
      }
      return what();
    },
    stop: () => {
      stopped = true;
      controller.abort();
    },
  };
}

function barePod(i) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `bare-${i}`, namespace, annotations: { "troupe.test/run-for": RUN_FOR } },
    spec: {
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      containers: [{ name: "task", image: "alpine:3.20", command: ["true"] }],
    },
  };
}

/** Deletes every pod of the namespace and waits until none is left. */
async function emptyNamespace() {
  await core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 });
  for (let i = 0; i < 600; i++) {
    if ((await core.listNamespacedPod({ namespace, limit: 1 })).items.length === 0) return;
    await pause(500);
  }
  throw new Error("the namespace's pods were not gone within 5 minutes");
}

async function troupeRound(file) {
  const t0 = performance.now();
  const watch = await watchPods(t0);
  const child = spawn(
    process.execPath,
    [
      troupe,
      "run",
      file,
      "--runtime",
      "kubernetes",
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      namespace,
      "--pod-annotations",
      `troupe.test/run-for=${RUN_FOR}`,
      "--output",
      "json",
      ...(maxParallel === undefined ? [] : ["--max-parallel", String(maxParallel)]),
    ],
    { env: { ...process.env, TROUPE_HOME: join(dir, "home"), NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const peak = { rssMb: 0, fds: 0 };
  const sampler = setInterval(() => {
    try {
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      if (rss) peak.rssMb = Math.max(peak.rssMb, Number(rss[1]) / 1024);
      peak.fds = Math.max(peak.fds, readdirSync(`/proc/${child.pid}/fd`).length);
    } catch {
      // Gone between two samples.
    }
  }, 200);
  const code = await new Promise((resolve) => child.on("exit", resolve));
  clearInterval(sampler);
  const done = performance.now() - t0;
  watch.stop();
  if (code !== 0) {
    // What failed, and why, from the run's record (its stderr's end lists only the last tasks).
    let summary = err.slice(-2000);
    try {
      const failed = JSON.parse(out)
        .groups.flatMap((g) => g.tasks)
        .filter((t) => t.status !== "COMPLETED");
      summary = `${failed.length} tasks not COMPLETED, e.g. ${failed
        .slice(0, 5)
        .map((t) => `${t.name} ${t.status} ${t.exit_code} (${t.reason})`)
        .join("; ")}`;
    } catch {
      // No record: the stderr's end says why.
    }
    throw new Error(`troupe run failed (${code}): ${summary}`);
  }
  const record = JSON.parse(out);
  const completed = record.groups.filter((g) => g.status === "COMPLETED").length;
  return { created: watch.created(), ended: watch.ended(), done, completed, peak };
}

async function clientRound() {
  const t0 = performance.now();
  const watch = await watchPods(t0);
  let next = 0;
  const worker = async () => {
    while (next < N) await core.createNamespacedPod({ namespace, body: barePod(next++) });
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  const createdCalls = performance.now() - t0;
  const ended = await watch.until(watch.ended);
  watch.stop();
  return { created: createdCalls, ended };
}

async function kubectlRound() {
  const manifest = join(dir, "pods.json");
  writeFileSync(manifest, JSON.stringify({ apiVersion: "v1", kind: "List", items: Array.from({ length: N }, (_, i) => barePod(i)) }));
  const t0 = performance.now();
  const watch = await watchPods(t0);
  const applied = spawnSync("kubectl", ["--kubeconfig", kubeconfig, "apply", "-f", manifest], { encoding: "utf8", maxBuffer: 1 << 26 });
  const created = performance.now() - t0;
  if (applied.status !== 0) throw new Error(`kubectl apply failed: ${applied.stderr.slice(-2000)}`);
  const ended = await watch.until(watch.ended);
  watch.stop();
  return { created, ended };
}

try {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  for (let i = 0; i < 100; i++) {
    if (
      await core.readNamespacedServiceAccount({ name: "default", namespace }).then(
        () => true,
        () => false,
      )
    )
      break;
    await pause(100);
  }
  const file = join(dir, "fanout.yaml");
  const lines = ["workflow:", "  name: k8s-fanout", "  tasks:"];
  for (let i = 0; i < N; i++) lines.push(`  - {name: t${i}, image: "alpine:3.20", command: ["true"]}`);
  writeFileSync(file, lines.join("\n") + "\n");
  const limit = maxParallel === undefined ? "troupe run's default concurrency" : `--max-parallel ${maxParallel}`;
  console.log(`# k8s-scale: ${N} single-pod tasks, each running ${RUN_FOR} once released, ${rounds} round(s), ${limit}`);
  for (let r = 0; r < rounds; r++) {
    let bare;
    let applied;
    if (!troupeOnly) {
      bare = await clientRound();
      await emptyNamespace();
      console.log(`client, bare pods:  every pod created ${fmt(bare.created)}, every pod ended ${fmt(bare.ended)}`);
      if (hasKubectl) {
        applied = await kubectlRound();
        await emptyNamespace();
        console.log(`kubectl apply:      every pod created ${fmt(applied.created)}, every pod ended ${fmt(applied.ended)}`);
      }
    }
    const ours = await troupeRound(file);
    await emptyNamespace();
    console.log(
      `troupe run:         every pod created ${fmt(ours.created)}, every pod ended ${fmt(ours.ended)}, run ended ${fmt(ours.done)} (${ours.completed} of ${N} groups COMPLETED)`,
    );
    console.log(`troupe's footprint: peak resident memory ${ours.peak.rssMb.toFixed(0)} MB, peak open file descriptors ${ours.peak.fds}`);
    if (troupeOnly) continue;
    const yardstick = applied ?? bare;
    console.log(
      `ratio to every pod created: ${(ours.created / yardstick.created).toFixed(2)}x ${applied ? "kubectl apply" : "the client"}; ` +
        `per-pod overhead to every pod ended: ${((ours.ended - bare.ended) / N).toFixed(1)} ms against the client`,
    );
  }
} finally {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
