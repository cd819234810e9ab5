/**
 * How a pod is shown its attempt's directories (src/runtime/kubernetes/data-volume.ts), deciding only: on the
 * data volume by the claim's sub-path, allowed host paths from the node, troupe's own directories nowhere
 * without a volume, and a directory of troupe's off the volume refused by name.
 */
import { describe, expect, it } from "vitest";
import { TroupeError } from "../../src/errors/index.js";
import { DATA_VOLUME, podDataMounts } from "../../src/runtime/kubernetes/index.js";

const home = "/mnt/shared/troupe";
const dataVolume = { claim: "shared", path: "/mnt/shared" };
const output = { source: `${home}/runs/r-1/work/a/0/output`, target: "/osmo/data/output", readOnly: false };
const input = { source: `${home}/runs/r-1/work/b/0/output`, target: "/osmo/data/input/0", readOnly: true };
const models = { source: "/srv/models", target: "/models", readOnly: false };

describe("a pod's data mounts", () => {
  it("mounts troupe's directories from the claim by sub-path, and the volume's root without one", () => {
    const root = { source: "/mnt/shared", target: "/everything", readOnly: true };
    const { volumes, mounts } = podDataMounts([output, input, root], { dataVolume, home }, "a");
    expect(volumes).toEqual([{ name: DATA_VOLUME, persistentVolumeClaim: { claimName: "shared" } }]);
    expect(mounts).toEqual([
      { name: DATA_VOLUME, mountPath: "/osmo/data/output", readOnly: false, subPath: "troupe/runs/r-1/work/a/0/output" },
      { name: DATA_VOLUME, mountPath: "/osmo/data/input/0", readOnly: true, subPath: "troupe/runs/r-1/work/b/0/output" },
      { name: DATA_VOLUME, mountPath: "/everything", readOnly: true },
    ]);
  });

  it("mounts an allowed host path from the node, one volume per path", () => {
    const again = { ...models, target: "/models-too", readOnly: true };
    const { volumes, mounts } = podDataMounts([models, again], { home }, "a");
    expect(volumes).toEqual([{ name: "troupe-host-0", hostPath: { path: "/srv/models" } }]);
    expect(mounts.map((m) => [m.name, m.mountPath, m.readOnly])).toEqual([
      ["troupe-host-0", "/models", false],
      ["troupe-host-0", "/models-too", true],
    ]);
  });

  it("gives no directory of troupe's without a data volume (the pool refuses workflows that need one)", () => {
    const checkpoint = { source: "/elsewhere/ckpt", target: "/ckpt", readOnly: false, made: true };
    expect(podDataMounts([output, input, checkpoint], { home }, "a")).toEqual({ volumes: [], mounts: [] });
  });

  it("refuses a directory of troupe's that is not on the volume, naming the task, the path and the claim", () => {
    const offVolume = { source: "/var/troupe/ckpt", target: "/ckpt", readOnly: false, made: true };
    const refusal = () => podDataMounts([offVolume], { dataVolume, home: "/var/troupe" }, "trainer");
    expect(refusal).toThrow(TroupeError);
    expect(refusal).toThrow(/task trainer: \/var\/troupe\/ckpt \(shown at \/ckpt\) is not on the data volume \(claim shared/);
  });
});
