/**
 * The Slurm runtime's decisions, apart from any cluster: the batch job a
 * group's members make (alike: one job of K tasks, on K nodes or packed;
 * different: a heterogeneous job), what a job's state means for a member
 * whose helper could not say, which pending reasons mean never, and what
 * sinfo's lines say of the nodes. (test/slurm/ and the conformance suite
 * run them on the real test cluster.)
 */
import { describe, expect, it } from "vitest";
import { allocation, batchScript, isHeterogeneous, quote, shapeOf, type JobRequest } from "../../src/runtime/slurm/batch-script.js";
import { neverStarts, outcomeOfJob } from "../../src/runtime/slurm/job-outcome.js";
import { parseNodes, type JobLine, type SlurmNode } from "../../src/runtime/slurm/slurm-commands.js";
import { clusterCapacity } from "../../src/runtime/slurm/cluster-facts.js";
import { groupJob } from "../../src/runtime/slurm/placement.js";

const request = (shapes: JobRequest["shapes"], extra: Partial<JobRequest> = {}): JobRequest => ({
  name: "troupe-run1-g",
  comment: "troupe;run=run1;owner=abc;pid=1:2:3",
  spread: "nodes",
  shapes,
  runDir: "/shared/runs/run1",
  scriptOutput: "/shared/runs/run1/jobs/g-1.%j.out",
  helper: ["/usr/bin/node", "/shared/member-helper-0123.mjs"],
  membersFile: "/shared/runs/run1/jobs/g-1.members",
  ...extra,
});

const sbatchLines = (script: string) => script.split("\n").filter((l) => l.startsWith("#SBATCH"));
const stepLine = (script: string) => script.split("\n").find((l) => l.startsWith("srun "))!;

describe("a group's batch job", () => {
  it("members alike, spread over nodes: one job of K tasks, one per node, memory and GPUs per node", () => {
    const shape = shapeOf({ cpu: 2, gpu: 1, memoryBytes: 512 * 2 ** 20 });
    const script = batchScript(request([shape, shape, shape], { partition: "main", account: "lab", qos: "high" }));
    expect(sbatchLines(script)).toEqual([
      "#SBATCH --job-name=troupe-run1-g",
      "#SBATCH --comment=troupe;run=run1;owner=abc;pid=1:2:3",
      "#SBATCH --no-requeue",
      "#SBATCH --chdir=/shared/runs/run1",
      "#SBATCH --output=/shared/runs/run1/jobs/g-1.%j.out",
      "#SBATCH --partition=main",
      "#SBATCH --account=lab",
      "#SBATCH --qos=high",
      "#SBATCH --ntasks=3",
      "#SBATCH --cpus-per-task=2",
      "#SBATCH --nodes=3",
      "#SBATCH --ntasks-per-node=1",
      "#SBATCH --mem=512M",
      "#SBATCH --gres=gpu:1",
    ]);
    expect(stepLine(script)).toBe(
      "srun --ntasks=3 --cpus-per-task=2 --ntasks-per-node=1 --kill-on-bad-exit=0 '/usr/bin/node' '/shared/member-helper-0123.mjs' '/shared/runs/run1/jobs/g-1.members' &",
    );
  });

  it("the step runs the helper's command as given: troupe-slurm-helper alone, or Node.js and member-helper.mjs", () => {
    const shape = shapeOf({ cpu: 1, gpu: 0, memoryBytes: 0 });
    const script = batchScript(request([shape, shape], { helper: ["/shared/troupe-slurm-helper-0123"] }));
    expect(stepLine(script)).toBe(
      "srun --ntasks=2 --cpus-per-task=1 --ntasks-per-node=1 --kill-on-bad-exit=0 '/shared/troupe-slurm-helper-0123' '/shared/runs/run1/jobs/g-1.members' &",
    );
  });

  it("members alike, packed: memory per CPU and GPUs per task, as Slurm places them", () => {
    const shape = shapeOf({ cpu: 2, gpu: 1, memoryBytes: 1000 * 2 ** 20 });
    const lines = sbatchLines(batchScript(request([shape, shape], { spread: "pack" })));
    expect(lines.slice(5)).toEqual([
      "#SBATCH --ntasks=2",
      "#SBATCH --cpus-per-task=2",
      "#SBATCH --mem-per-cpu=500M",
      "#SBATCH --gpus-per-task=1",
    ]);
  });

  it("members that ask differently: a heterogeneous job, a component each with the job's name and comment, one step over all", () => {
    const shapes = [shapeOf({ cpu: 2, gpu: 0, memoryBytes: 0 }), shapeOf({ cpu: 1, gpu: 2, memoryBytes: 2 ** 30 })];
    expect(isHeterogeneous(shapes)).toBe(true);
    const script = batchScript(request(shapes));
    const lines = sbatchLines(script);
    expect(lines.filter((l) => l === "#SBATCH hetjob")).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith("#SBATCH --comment="))).toHaveLength(2);
    const second = lines.slice(lines.indexOf("#SBATCH hetjob") + 1);
    expect(second.slice(5)).toEqual([
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks=1",
      "#SBATCH --cpus-per-task=1",
      "#SBATCH --mem=1024M",
      "#SBATCH --gres=gpu:2",
    ]);
    expect(stepLine(script)).toContain("srun --het-group=0-1 --kill-on-bad-exit=0 ");
  });

  it("a run whose tasks end with troupe: an interactive allocation (salloc) with the same options, its script run here, lingering only for a member Slurm signalled", () => {
    const shape = shapeOf({ cpu: 2, gpu: 1, memoryBytes: 512 * 2 ** 20 });
    const { argv, script } = allocation(request([shape, shape], { partition: "main" }), "/shared/runs/run1/jobs/g-1.sh");
    expect(argv).toEqual([
      "salloc",
      "--kill-command=TERM",
      "--job-name=troupe-run1-g",
      "--comment=troupe;run=run1;owner=abc;pid=1:2:3",
      "--chdir=/shared/runs/run1",
      "--partition=main",
      "--ntasks=2",
      "--cpus-per-task=2",
      "--nodes=2",
      "--ntasks-per-node=1",
      "--mem=512M",
      "--gres=gpu:1",
      "/bin/sh",
      "/shared/runs/run1/jobs/g-1.sh",
    ]);
    // salloc has no --output or --no-requeue (an interactive job is never requeued); the script has no #SBATCH line.
    expect(sbatchLines(script)).toEqual([]);
    expect(stepLine(script)).toBe(
      "srun --ntasks=2 --cpus-per-task=2 --ntasks-per-node=1 --kill-on-bad-exit=0 '/usr/bin/node' '/shared/member-helper-0123.mjs' '/shared/runs/run1/jobs/g-1.members' &",
    );
    // Its members' helpers signalled by Slurm: it waits for Slurm's end (salloc's SIGTERM ends the wait).
    expect(script).toContain('[ -n "$signalled" ] && exec sleep 900');
  });

  it("members that ask differently, allocated interactively: salloc's components between colons", () => {
    const shapes = [shapeOf({ cpu: 2, gpu: 0, memoryBytes: 0 }), shapeOf({ cpu: 1, gpu: 0, memoryBytes: 0 })];
    const { argv, script } = allocation(request(shapes), "/s.sh");
    const at = argv.indexOf(":");
    expect(argv.filter((word) => word === ":")).toHaveLength(1);
    expect(argv.slice(2, at)).toContain("--cpus-per-task=2");
    expect(argv.slice(at + 1, -2)).toEqual([
      "--job-name=troupe-run1-g",
      "--comment=troupe;run=run1;owner=abc;pid=1:2:3",
      "--chdir=/shared/runs/run1",
      "--nodes=1",
      "--ntasks=1",
      "--cpus-per-task=1",
    ]);
    expect(stepLine(script)).toContain("srun --het-group=0-1 --kill-on-bad-exit=0 ");
  });

  it("a task's resources in Slurm's units: whole CPUs, at least one; MB of memory; nothing asked is nothing given", () => {
    expect(shapeOf(undefined)).toEqual({ cpus: 1, memoryMb: 0, gpus: 0 });
    expect(shapeOf({ cpu: 0.5, gpu: 0, memoryBytes: 1 })).toEqual({ cpus: 1, memoryMb: 1, gpus: 0 });
    expect(quote("it's")).toBe(`'it'\\''s'`);
  });
});

describe("a member's end from its job, when its helper could not say", () => {
  const line = (state: string, reason = "None"): JobLine => ({ id: "42", name: "troupe-r-g", state, reason, nodes: "n2", comment: "" });

  it.each([
    ["NODE_FAIL", false, "backend-error"],
    ["PREEMPTED", false, "preempted"],
    ["TIMEOUT", false, "backend-error"],
    ["OUT_OF_MEMORY", false, "exited"],
    ["CANCELLED", true, "start-failed"],
    ["CANCELLED", false, "backend-error"],
    ["COMPLETED", false, "backend-error"],
  ])("%s (stopped by troupe: %s) is %s", (state, stopped, kind) => {
    const outcome = outcomeOfJob("42", line(state), stopped);
    expect(outcome.kind).toBe(kind);
    if (outcome.kind === "exited") expect(outcome.code).toBe(137);
    else expect(outcome.message).toContain("job 42");
  });

  it("a member Slurm signalled: Slurm's end decides (preempted, timed out); a signal Slurm did not follow with its end leaves the command's exit", () => {
    expect(outcomeOfJob("42", line("PREEMPTED"), false, { code: 143 })).toMatchObject({ kind: "preempted" });
    expect(outcomeOfJob("42", line("TIMEOUT"), false, { code: 143 })).toMatchObject({ kind: "backend-error" });
    expect(outcomeOfJob("42", line("COMPLETED"), false, { code: 143 })).toMatchObject({
      kind: "exited",
      code: 143,
      reason: "after a signal from Slurm; job 42 ended COMPLETED",
    });
    expect(outcomeOfJob("42", line("COMPLETED"), false, {})).toMatchObject({ kind: "backend-error" });
  });

  it("a job Slurm has forgotten, with no exit file, is lost", () => {
    expect(outcomeOfJob("42", undefined, false)).toMatchObject({ kind: "lost" });
  });

  it("a pending job that can never start says why; one waiting for resources or a drained node waits", () => {
    expect(neverStarts(line("PENDING", "PartitionNodeLimit"))).toBe("job 42 can never start: Slurm says PartitionNodeLimit");
    expect(neverStarts(line("PENDING", "Resources"))).toBeUndefined();
    expect(neverStarts(line("PENDING", "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved"))).toBeUndefined();
    expect(neverStarts(line("RUNNING", "PartitionNodeLimit"))).toBeUndefined();
  });
});

describe("sinfo's nodes", () => {
  it("reads name, CPUs, memory, GPUs, state, address and partitions, and sums the capacity", () => {
    const nodes = parseNodes(
      "n1|4|4000|gpu:2|idle|10.250.0.11|main*\nn2|4|4000|(null)|drain|10.250.0.12|main*\nn2|4|4000|(null)|drain|10.250.0.12|debug\n",
    );
    expect(nodes).toEqual([
      {
        name: "n1",
        cpus: 4,
        memoryMb: 4000,
        gpus: 2,
        state: "idle",
        address: "10.250.0.11",
        partitions: ["main"],
        defaultPartition: "main",
      },
      {
        name: "n2",
        cpus: 4,
        memoryMb: 4000,
        gpus: 0,
        state: "drain",
        address: "10.250.0.12",
        partitions: ["main", "debug"],
        defaultPartition: "main",
      },
    ]);
    expect(clusterCapacity(nodes)).toEqual({ cpu: 8, gpu: 2, memoryBytes: 8000 * 2 ** 20 });
  });
});

describe("a group's job on the partition's nodes (troupe plan, and the refusal before submission)", () => {
  const node = (name: string, cpus: number, memoryMb: number, gpus: number): SlurmNode => ({
    name,
    cpus,
    memoryMb,
    gpus,
    state: "idle",
    address: name,
    partitions: ["main"],
  });
  const nodes = [node("n1", 4, 4000, 2), node("n2", 4, 4000, 2), node("n3", 8, 2000, 0)];
  const ask = (cpu: number, memoryBytes = 0, gpu = 0) => ({ cpu, gpu, memoryBytes });

  it("says how Slurm is asked: distinct nodes, packed, or a heterogeneous job", () => {
    expect(groupJob([ask(1), ask(1), ask(1)], "nodes", nodes)).toEqual({ how: "one job, 3 tasks on 3 distinct nodes, 1 CPU each" });
    expect(groupJob([ask(2), ask(2)], "pack", nodes).how).toBe("one job, 2 tasks of 2 CPUs, packed on nodes as Slurm places them");
    expect(groupJob([ask(1)], "nodes", nodes).how).toBe("one job, one task of 1 CPU");
    expect(groupJob([ask(2, 2 ** 30, 1), ask(1)], "nodes", nodes).how).toBe(
      "a heterogeneous job of 2 components (2 CPUs, 1024 MB, 1 GPU; 1 CPU), placed by Slurm",
    );
  });

  it("refuses more members than nodes on distinct nodes, and a member larger than every node, with the numbers", () => {
    expect(groupJob([ask(1), ask(1), ask(1), ask(1)], "nodes", nodes, "main").refusal).toBe(
      "spread: nodes puts each of the 4 members on a node of its own, and partition main has 3 nodes (use spread: pack, or fewer members)",
    );
    expect(groupJob([ask(1), ask(1), ask(1), ask(1)], "pack", nodes).refusal).toBeUndefined();
    expect(groupJob([ask(9)], "nodes", nodes).refusal).toBe(
      "a member asks for 9 CPUs on one node, and no node of the cluster has that much (at most 8 CPUs, 4000 MB, 2 GPUs a node)",
    );
    expect(groupJob([ask(1, 0, 3)], "pack", nodes).refusal).toContain("asks for 1 CPU, 3 GPUs on one node");
    expect(groupJob([ask(8), ask(1, 3000 * 2 ** 20)], "nodes", nodes).refusal).toBeUndefined();
    // Each dimension fits some node, but no node has all of it.
    expect(groupJob([ask(8, 3000 * 2 ** 20)], "nodes", nodes).refusal).toContain("asks for 8 CPUs, 3000 MB on one node");
  });
});
