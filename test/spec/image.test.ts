/** `image:` is an image reference ([registry[:port]/]name[:tag][@digest]), checked at validate time. */
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec } from "../../src/spec/index.js";

const spec = (image: string) => `workflow:\n  name: wf\n  tasks:\n    - name: a\n      image: ${image}\n      command: [echo]\n`;
const sha = (n: number) => "a".repeat(n);

async function imageProblems(image: string) {
  return (await loadWorkflowSpec(spec(image))).diagnostics;
}

describe("image references", () => {
  it.each([
    "alpine",
    "alpine:3.18",
    "ubuntu:24.04",
    "library/ubuntu:latest",
    "docker.io/library/alpine:3.18",
    "nvcr.io/nvidia/pytorch:24.01-py3",
    "ghcr.io/org/team/tool_name:v1.2.3-rc.1",
    "localhost:5000/my-image",
    "registry.example.com:443/a/b/c:TAG_1",
    "[::1]:5000/img:1",
    "my__image",
    "a-----b:x",
    `alpine@sha256:${sha(64)}`,
    `alpine:3.18@sha256:${sha(64)}`,
    "15",
    `"{{output}}"`,
  ])("accepts %s", async (image) => {
    expect((await imageProblems(image)).filter((d) => d.code === "E_BAD_IMAGE")).toEqual([]);
  });

  it.each([
    ['"--volume=/:/host"', "starts with `-`"],
    ["-v", "starts with `-`"],
    ['"--privileged"', "starts with `-`"],
    ["Alpine:3.18", "lowercase"],
    ["docker.io/Library/Ubuntu", "lowercase"],
    ['""', "must not be empty"],
    ['"alpine 3.18"', "whitespace"],
    ['"alpine:"', "not an image reference"],
    ["alpine:.tag", "not an image reference"],
    [`alpine:${"t".repeat(129)}`, "not an image reference"],
    ["alpine@sha256:abc", "not an image reference"],
    [`alpine@sha256:${sha(40)}`, "64 hex digits, not 40"],
    ["a_-b", "not an image reference"],
    ["/alpine", "not an image reference"],
    ["alpine/", "not an image reference"],
    ["host:port/x", "not an image reference"],
    [`${"a".repeat(256)}`, "at most 255"],
  ])("rejects %s with E_BAD_IMAGE", async (image, words) => {
    const found = await imageProblems(image);
    expect(found.map((d) => d.code)).toEqual(["E_BAD_IMAGE"]);
    expect(found[0]).toMatchObject({ path: "workflow.tasks[0].image", line: 5, column: 14 });
    expect(found[0]?.message).toContain(words);
    expect(found[0]?.hint).toBeTruthy();
  });

  it("says what is wrong with a flag given as an image, and how to write one", async () => {
    const [d] = await imageProblems('"--volume=/:/host"');
    expect(d?.message).toBe("image `--volume=/:/host` starts with `-`; an image reference never does");
    expect(d?.hint).toMatch(/^for example alpine:3\.18/);
  });

  it("suggests the lowercase name", async () => {
    const [d] = await imageProblems("nvcr.io/NVIDIA/PyTorch:24.01-py3");
    expect(d?.hint).toBe("write nvcr.io/nvidia/pytorch:24.01-py3");
  });
});
