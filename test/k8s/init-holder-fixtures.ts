/**
 * What the init holder's tests share: a launch as the pool writes it into the launch Secret (barrier.ts
 * launchSecret with the init holder), laid out in a directory as the kubelet lays out a Secret volume, and the
 * downward API file of the pod's annotations, held or released.
 */
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskLaunch } from "../../src/port/index.js";
import { BARRIER_ANNOTATION, launchSecret } from "../../src/runtime/kubernetes/index.js";

export function taskLaunch(argv: string[], env: Record<string, string>, files: TaskLaunch["files"]): TaskLaunch {
  return {
    key: "g/t/0",
    taskName: "t",
    groupName: "g",
    retryId: 0,
    image: "scratch",
    argv,
    env,
    files,
    outputDir: "",
    inputDirs: [],
    address: "",
    hosts: {},
    logPath: "",
  };
}

/** The launch Secret's keys as files of `dir`, `launch` last and whole (the kubelet swaps a volume's contents at once). */
export function writeLaunch(dir: string, launch: TaskLaunch): void {
  const secret = launchSecret(launch, { home: "h", runId: "r" }, "ns", "pod", "init");
  const entries = Object.entries(secret.data!).sort(([a], [b]) => (a === "launch" ? 1 : b === "launch" ? -1 : 0));
  for (const [key, value] of entries) writeRaw(dir, key, Buffer.from(value, "base64"));
}

/** A file of `dir` written whole (a rename), as the kubelet's atomic writer does. */
export function writeRaw(dir: string, name: string, contents: Buffer | string): void {
  writeFileSync(join(dir, `.${name}.partial`), contents);
  renameSync(join(dir, `.${name}.partial`), join(dir, name));
}

/** The downward API file of the pod's annotations, as the kubelet writes it. */
export function writeAnnotations(dir: string, barrier: "held" | "released"): void {
  writeRaw(dir, "annotations", `troupe.dev/attempt-key="g/t/0"\n${BARRIER_ANNOTATION}="${barrier}"\ntroupe.dev/run-id="r"\n`);
}
