/**
 * The pools the conformance suite runs against, by name: the test files
 * make them here, and so does the child process that plays a troupe killed
 * mid-run (dead-session-child.ts), which must make the very same pool.
 */
import type { PoolBackend } from "../../src/port/index.js";
import { connectEngine, ContainerRuntime, HostRuntime, LocalPool, type ContainerBackend } from "../../src/runtime/index.js";
import { PodmanCliBackend } from "../../src/runtime/container/cli-backend.js";
import { partitionNodes, SlurmPool } from "../../src/runtime/slurm/index.js";
import { attemptCluster } from "../slurm/slurm-cluster.js";
import { ensureSpawnerBuilt } from "../runtime/spawner-fixtures.js";
import { ChaosPool } from "./chaos-pool.js";
import { KubernetesPool } from "../../src/runtime/kubernetes/index.js";
import { givenCluster, kubeConfigFrom } from "../k8s/k8s-cluster.js";

/** troupe's home as these pools see it (hidden from tasks; in the keys of what they make): none is needed on disk. */
export const CONFORMANCE_HOME = "/nonexistent/troupe-conformance-home";

/**
 * The host runtime with a sandbox builder: troupe-spawner's own (the default
 * as root) or bubblewrap (TROUPE_SANDBOX=bwrap), which a runtime reads as it
 * is made: LocalPool makes one per run.
 */
function hostPool(builder: "troupe-spawner" | "bwrap"): PoolBackend {
  // troupe-spawner and troupe-init (one script builds both): a fresh worktree has neither.
  ensureSpawnerBuilt();
  return new LocalPool("host", () => {
    const saved = process.env.TROUPE_SANDBOX;
    if (builder === "bwrap") process.env.TROUPE_SANDBOX = "bwrap";
    else delete process.env.TROUPE_SANDBOX;
    try {
      return new HostRuntime({ isolation: "netns", home: CONFORMANCE_HOME });
    } finally {
      if (saved === undefined) delete process.env.TROUPE_SANDBOX;
      else process.env.TROUPE_SANDBOX = saved;
    }
  });
}

/** The container runtime over one engine connection, shared by the pool's runs (closed with `closeEngine`). */
function containerPool(backend: ContainerBackend): PoolBackend {
  ensureSpawnerBuilt();
  const pool = new LocalPool(
    "container",
    () => new ContainerRuntime({ backend, pull: "never", sharedBackend: true, home: CONFORMANCE_HOME }),
  );
  engines.set(pool, backend);
  return pool;
}

const engines = new WeakMap<PoolBackend, ContainerBackend>();

/** Closes the engine connection of a pool made here (nothing for the host's). */
export async function closeEngine(pool: PoolBackend | undefined): Promise<void> {
  const backend = pool && engines.get(pool);
  if (backend) await backend.close();
}

export const BACKENDS = {
  "host-spawner": async () => hostPool("troupe-spawner"),
  "host-bwrap": async () => hostPool("bwrap"),
  /**
   * bubblewrap started by Node's spawn (TROUPE_SPAWNER=node: where no C
   * compiler built troupe-spawner): no restart in place, no kept tasks.
   * TROUPE_SPAWNER is read at every start, so it is set for the whole process
   * (the test file's, and the dead-session child's, which inherits it).
   */
  "host-bwrap-node": async () => {
    process.env.TROUPE_SPAWNER = "node";
    return hostPool("bwrap");
  },
  "podman-cli": async () => containerPool(await PodmanCliBackend.connect()),
  /** The Docker Engine API at DOCKER_HOST (podman's service, in the tests). */
  "docker-api": async () => containerPool(await connectEngine("docker")),
  /**
   * The Slurm runtime on the test cluster (scripts/slurm/up.sh, or CI's: TROUPE_SLURM_CONF), members on
   * distinct nodes; a troupe gone for 5 s has its helpers end the commands of runs that do not keep them.
   */
  slurm: () => slurmPool(),
  /** The same, each member in a podman container of its image on its node (the nodes share this machine's podman). */
  "slurm-podman": () => slurmPool("podman"),
  /**
   * The Kubernetes runtime on the test cluster (scripts/k8s/up.sh: kwok's nodes), in the namespace the test file
   * made (TROUPE_CONFORMANCE_K8S_NAMESPACE, inherited by the dead-session child); a released pod ends 0 after
   * 300 ms (the test cluster's `troupe.test/run-for` hook, which kwok reads).
   */
  kubernetes: async () => {
    const { cluster, reason } = givenCluster();
    const namespace = process.env.TROUPE_CONFORMANCE_K8S_NAMESPACE;
    if (!cluster || !namespace)
      throw new Error(`no Kubernetes test cluster or namespace: ${reason ?? "TROUPE_CONFORMANCE_K8S_NAMESPACE is not set"}`);
    return new KubernetesPool({
      config: kubeConfigFrom(cluster.kubeconfig),
      home: CONFORMANCE_HOME,
      namespace,
      podAnnotations: { "troupe.test/run-for": "300ms" },
    });
  },
  /** The chaos pool with no faults scripted, over the host runtime: it must pass the suite as its inner pool does. */
  "chaos-host": async () => new ChaosPool(hostPool("troupe-spawner")),
} satisfies Record<string, () => Promise<PoolBackend>>;

export type BackendName = keyof typeof BACKENDS;

/** A Slurm pool on the test cluster, its members in the host sandbox on their nodes or (`podman`) containers there. */
async function slurmPool(nodeEngine?: "podman"): Promise<SlurmPool> {
  const { cluster, reason } = attemptCluster();
  if (!cluster) throw new Error(`no Slurm test cluster: ${reason}`);
  return new SlurmPool({
    env: cluster.env,
    sharedDir: cluster.shared,
    listenAddress: cluster.loginAddress,
    spread: "nodes",
    home: CONFORMANCE_HOME,
    nodes: await partitionNodes(cluster.env, undefined),
    orphanMs: 5000,
    ...(nodeEngine && { nodeEngine }),
  });
}
