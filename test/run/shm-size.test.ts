/**
 * A container's /dev/shm is the pool's size (--shm-size, `shm_size`), 1 GiB
 * by default: podman's own 64 MB starves PyTorch's data loaders. Real podman.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun, ensureBuilt, runJson, TestHome, troupe } from "./helpers.js";

let home: TestHome;
beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
}, 200_000);
afterAll(() => home?.remove());

const SPEC = `workflow:
  name: shm
  tasks:
  - name: loader
    image: alpine:3.18
    command: [sh, -c, "df -k /dev/shm | tail -1 | awk '{print $2}'"]
`;

// The container runtime needs podman and its containers.conf here (scripts/test.sh sets CONTAINERS_CONF).
describe.skipIf(!process.env.CONTAINERS_CONF)("/dev/shm in containers", () => {
  it.each([
    ["by default, 1 GiB", [], 1024 * 1024],
    ["--shm-size 256Mi", ["--shm-size", "256Mi"], 256 * 1024],
  ])("%s", async (_, extra, kib) => {
    const run = await runJson(home.spec("shm", SPEC), { home: home.home, target: "container", extra });
    expect(run.code, describeRun(run)).toBe(0);
    expect(home.log(run.record.id, "loader")).toBe(`${kib}\n`);
  });

  it("a size that is none is a usage error naming the flag", async () => {
    const result = await troupe(["run", home.spec("shm", SPEC), "--shm-size", "lots"], { home: home.home });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--shm-size lots: a size such as 8Gi");
  });
});
