/**
 * The runtime port's conformance suite (port.conformance.ts) against the
 * Slurm runtime on the real test cluster (scripts/slurm/up.sh: three nodes,
 * each its own network namespace and address): each group a batch job, its
 * members' helpers connecting back over TCP. Skipped only when no cluster
 * can start here, saying why.
 */
import { describe } from "vitest";
import { attemptCluster } from "../slurm/slurm-cluster.js";
import { BACKENDS } from "./backends.js";
import { describeConformance } from "./port.conformance.js";

const attempt = attemptCluster();
if (attempt.reason) console.warn(`test/conformance/slurm.conformance.test.ts skipped: ${attempt.reason}`);
// The dead-session child makes the same pool: it finds this cluster by TROUPE_SLURM_CONF.
if (attempt.cluster) process.env.TROUPE_SLURM_CONF ??= attempt.cluster.env.SLURM_CONF;

describe.skipIf(!attempt.cluster)(`slurm runtime (${attempt.reason ?? "the test cluster"})`, () => {
  describeConformance({
    name: "slurm, a batch job per group",
    backend: "slurm",
    make: BACKENDS.slurm,
    image: "alpine:3.18",
    missingBinary: "start-failed",
    cannot: { files: "members are plain processes of the nodes: `files:` cannot be placed at their paths (no sandbox yet)" },
  });
});
