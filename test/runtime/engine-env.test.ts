/**
 * The container engine's environment (runtime/container/engine-env.ts):
 * which relative paths are resolved against troupe's working directory, and
 * how podman's reason for not starting a container is found and shortened
 * (engine-check.ts, cli-backend.ts). The end-to-end runs are in
 * test/run/first-run.test.ts.
 */
import { describe, expect, it } from "vitest";
import { podmansReason } from "../../src/runtime/container/cli-backend.js";
import { podmanHint, trimReason } from "../../src/runtime/container/engine-check.js";
import { engineEnvironment, resolvedPathVariables } from "../../src/runtime/container/engine-env.js";

describe("paths in the engine's environment", () => {
  it("makes podman's relative path variables absolute against troupe's directory, and leaves the rest", () => {
    const env = {
      CONTAINERS_CONF: "scripts/ci-containers.conf",
      CONTAINERS_STORAGE_CONF: "/etc/containers/storage.conf",
      REGISTRY_AUTH_FILE: "./auth.json",
      XDG_CONFIG_HOME: "../config",
      TMPDIR: "tmp",
      SOME_TOOL_CONFIG: "tool.yaml",
      DOCKER_HOST: "unix:///run/podman/podman.sock",
      CONTAINER_HOST: "ssh://me@host/run/podman.sock",
      LANG: "C.UTF-8",
      TERM: "xterm",
      EMPTY_DIR: "",
      PATH: "/usr/bin:bin::/bin",
    };
    expect(resolvedPathVariables(env, "/work/troupe")).toEqual({
      CONTAINERS_CONF: "/work/troupe/scripts/ci-containers.conf",
      REGISTRY_AUTH_FILE: "/work/troupe/auth.json",
      XDG_CONFIG_HOME: "/work/config",
      TMPDIR: "/work/troupe/tmp",
      SOME_TOOL_CONFIG: "/work/troupe/tool.yaml",
      // An empty entry is the working directory, as for any PATH search.
      PATH: "/usr/bin:/work/troupe/bin:/work/troupe:/bin",
    });
  });

  it("leaves an environment of absolute paths as it is", () => {
    const env = { CONTAINERS_CONF: "/etc/c.conf", PATH: "/usr/bin:/bin", HOME: "/root" };
    expect(resolvedPathVariables(env, "/anywhere")).toEqual({});
    expect(engineEnvironment(env, "/anywhere")).toEqual(env);
  });
});

describe("podman's reason, on one line", () => {
  it("is its last line that says something, not its log lines or its complaint about conmon's silence", () => {
    const passedThrough = [
      "fake-runc: this OCI runtime refuses every container",
      'time="2026-12-06T14:41:36Z" level=error msg="Removing container 2517 from runtime after creation failed"',
      'Error: container create failed (no logs from conmon): conmon bytes "": readObjectStart: expect { or n',
      "",
    ].join("\n");
    expect(podmansReason(passedThrough)).toBe("fake-runc: this OCI runtime refuses every container");
    expect(podmansReason("Error: runc: runc create failed: x: operation not permitted\n")).toBe(
      "runc: runc create failed: x: operation not permitted",
    );
    expect(podmansReason("\n\n")).toBeUndefined();
  });

  it("keeps who and what of a long chain, and says how to fix the reasons met on real machines", () => {
    const runc =
      "runc: runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: OCI permission denied";
    const trimmed = trimReason(runc);
    expect(trimmed.length).toBeLessThanOrEqual(160);
    expect(trimmed).toMatch(/^runc: …: .*error setting rlimit type 7: operation not permitted: OCI permission denied$/);
    expect(trimReason("short: reason")).toBe("short: reason");
    expect(trimReason("x".repeat(300))).toHaveLength(160);
    expect(podmanHint(runc)).toContain("default_ulimits");
    expect(podmanHint("crun: cannot set up cgroup: the cgroup hierarchy is hybrid")).toContain('runtime = "runc"');
    expect(podmanHint("something else")).toContain("podman run --rm IMAGE true");
  });
});
