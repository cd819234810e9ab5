/**
 * troupe-init's Kubernetes mode in a real container of an image with NO /bin/sh (FROM scratch, one static
 * test binary), run as a pod would run it: its own directory mounted read-only at /etc/troupe/bin (the
 * ConfigMap's volume), the pod-info and launch directories bind-mounted read-only at /etc/troupe/pod and
 * /etc/troupe/launch (the downward API and Secret volumes), the container's command troupe-init's. The shell
 * holder cannot run there at all; this one holds, then places the files (making their directories) and execs
 * the command with exactly the launch's environment. No kubelet runs here (kwok's nodes run no container), so
 * the volumes are bind mounts that the test writes as the kubelet would.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { holderVolumes, initCommand, LAUNCH_DIR, POD_INFO_DIR } from "../../src/runtime/kubernetes/index.js";
import { builtHelper } from "../../src/runtime/native-helpers.js";
import { ensureBuilt, IS_ROOT, random, ROOT } from "../run/helpers.js";
import { taskLaunch, writeAnnotations, writeLaunch } from "./init-holder-fixtures.js";

const CONTAINERS_CONF = process.env.CONTAINERS_CONF ?? join(ROOT, "scripts", "ci-containers.conf");
const env = { ...process.env, CONTAINERS_CONF };
const run = promisify(execFile);

function podmanAndCompiler(): boolean {
  try {
    execFileSync("podman", ["info"], { stdio: "ignore", timeout: 60_000, env });
    execFileSync("cc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The test's command: its argv and environment, and the placed file's mode and contents, on stdout; exit 5. */
const PRINTER = `
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
extern char **environ;
int main(int argc, char **argv) {
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\\n", i, argv[i]);
  for (char **e = environ; *e; e++) printf("env=%s\\n", *e);
  const char *placed = getenv("PLACED");
  struct stat st;
  if (placed && stat(placed, &st) == 0) {
    printf("mode=%o\\n", st.st_mode & 07777);
    FILE *f = fopen(placed, "r");
    char text[256] = {0};
    fread(text, 1, sizeof text - 1, f);
    printf("contents=%s\\n", text);
  }
  return 5;
}
`;

const dir = mkdtempSync(join("/var/tmp", "troupe-k8s-scratch-"));
const image = `localhost/troupe-test/no-shell-${random()}`;
const containers: string[] = [];

describe.runIf(IS_ROOT && podmanAndCompiler())("troupe-init --kubernetes in an image without /bin/sh", () => {
  beforeAll(async () => {
    await ensureBuilt();
    const context = join(dir, "image");
    mkdirSync(context);
    writeFileSync(join(context, "printer.c"), PRINTER);
    execFileSync("cc", ["-static", "-O2", "-o", join(context, "printer"), join(context, "printer.c")]);
    // A home for a non-root user (distroless `nonroot`'s 65532), where it may make directories.
    mkdirSync(join(context, "home"));
    writeFileSync(join(context, "Containerfile"), "FROM scratch\nCOPY printer /printer\nCOPY --chown=65532:65532 home /home/nonroot\n");
    await run("podman", ["build", "--quiet", "--tag", image, "--file", join(context, "Containerfile"), context], { env, timeout: 120_000 });
  }, 300_000);
  afterAll(async () => {
    for (const name of containers) await run("podman", ["rm", "--force", "--time", "0", "--", name], { env }).catch(() => undefined);
    await run("podman", ["rmi", "--force", image], { env }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("has no shell: the shell holder cannot start there", async () => {
    const name = `troupe-no-shell-${random()}`;
    containers.push(name);
    const refused = await run("podman", ["run", "--rm", "--name", name, "--network", "none", image, "/bin/sh", "-c", "true"], {
      env,
      timeout: 60_000,
    }).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(refused?.code).toBe(127);
    expect(refused?.stderr).toMatch(/\/bin\/sh.*(no such file|not found)/i);
  }, 90_000);

  it.each([
    ["root", undefined, "/data/conf/settings.txt"],
    // A distroless `nonroot` image's user: the launch Secret's files (root's, at the volume's mode) readable to it.
    ["nonroot (65532)", "65532:65532", "/home/nonroot/conf/settings.txt"],
  ])(
    "as %s: holds until released, then places the files and execs the command with exactly the launch's environment",
    async (_who, user, placed) => {
      const pod = join(dir, `pod-${random()}`);
      const bin = join(pod, "bin");
      const podInfo = join(pod, "info");
      const launchDir = join(pod, "launch");
      for (const d of [bin, podInfo, launchDir]) mkdirSync(d, { recursive: true });
      // The ConfigMap's volume: the binary, read-only and executable (defaultMode 0555).
      copyFileSync(builtHelper("troupe-init")!, join(bin, "troupe-init"));
      chmodSync(join(bin, "troupe-init"), 0o555);
      writeAnnotations(podInfo, "held");
      const name = `troupe-no-shell-${random()}`;
      containers.push(name);
      const mounts = [`${bin}:/etc/troupe/bin:ro`, `${podInfo}:${POD_INFO_DIR}:ro`, `${launchDir}:${LAUNCH_DIR}:ro`];
      const args = ["run", "--rm", "--name", name, "--network", "none", ...mounts.flatMap((m) => ["--volume", m])];
      if (user) args.push("--user", user);
      const container = spawn("podman", [...args, image, ...initCommand(POD_INFO_DIR, LAUNCH_DIR)], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      container.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      container.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => container.on("exit", resolve));
      let done = false;
      void exited.then(() => (done = true));

      // Up and held: running, with neither the launch nor the release.
      const state = async () => (await run("podman", ["inspect", "--format", "{{.State.Status}}", name], { env })).stdout.trim();
      for (let i = 0; i < 300 && !done && (await state().catch(() => "")) !== "running"; i++) await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setTimeout(r, 1500));
      expect(done).toBe(false);
      expect(await state()).toBe("running");

      const launch = taskLaunch(["/printer", "two words", ""], { PLACED: placed, ONLY: "this one" }, [
        { path: placed, contents: Buffer.from("configured"), mode: 0o640 },
      ]);
      writeLaunch(launchDir, launch);
      // As the kubelet writes a Secret's volume: root's files at the volume's defaultMode.
      const secretMode = holderVolumes("pod").volumes.find((v) => v.secret)!.secret!.defaultMode!;
      for (const file of readdirSync(launchDir)) chmodSync(join(launchDir, file), secretMode);
      await new Promise((r) => setTimeout(r, 1500));
      expect(done).toBe(false); // the launch, still held
      writeAnnotations(podInfo, "released");

      expect(await exited, stderr).toBe(5);
      expect(stderr).toBe("");
      expect(stdout).toBe(
        [
          "argv[0]=/printer",
          "argv[1]=two words",
          "argv[2]=",
          `env=PLACED=${placed}`,
          "env=ONLY=this one",
          "mode=640",
          "contents=configured",
          "",
        ].join("\n"),
      );
    },
    120_000,
  );
});
