/**
 * `url:` inputs and outputs name an object store troupe can transfer, and
 * their `regex` compiles: anything else is an error at its place in the file
 * (validate, plan, run and submit all say it), naming the supported scheme.
 */
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec } from "../../src/spec/index.js";

const spec = (inputs: string, outputs = "") => `workflow:
  name: wf
  tasks:
  - name: t
    image: alpine:3.18
    command: [true]
    inputs:
${inputs}${outputs ? `\n    outputs:\n${outputs}` : ""}
`;

async function problems(src: string) {
  const result = await loadWorkflowSpec(src);
  return result.diagnostics
    .filter((d) => d.severity === "error")
    .map((d) => ({ code: d.code, path: d.path, line: d.line, message: d.message }));
}

describe("url: inputs and outputs", () => {
  it("accepts s3:// URLs (a bucket, a path, a token in the path) and regexes that compile", async () => {
    const src = spec(
      `    - url: s3://bucket
    - url: s3://bucket/data/
      regex: '.*\\.csv$'`,
      `    - url: s3://bucket/runs/{{workflow_id}}/out
      regex: model/.*`,
    );
    expect(await problems(src)).toEqual([]);
  });

  it("refuses another scheme, naming the supported one, at the url's line", async () => {
    const found = await problems(spec("    - url: gs://bucket/data", "    - url: https://example.com/x"));
    expect(found).toEqual([
      {
        code: "E_DATA_URL",
        path: "workflow.tasks[0].inputs[0].url",
        line: 8,
        message: "`gs://` is not a scheme troupe can transfer; supported: s3://",
      },
      {
        code: "E_DATA_URL",
        path: "workflow.tasks[0].outputs[0].url",
        line: 10,
        message: "`https://` is not a scheme troupe can transfer; supported: s3://",
      },
    ]);
  });

  it("refuses a URL without a bucket, with .. in its path, or that is no URL", async () => {
    const found = await problems(spec("    - url: s3:///data\n    - url: s3://b/../x\n    - url: bucket/data"));
    expect(found.map((f) => f.message)).toEqual([
      "`s3:///data` names no bucket (s3://BUCKET/PATH)",
      "`s3://b/../x` has an empty, `.` or `..` path segment, or one with `,`, `;` or `*`",
      "`bucket/data` is not a URL of an object store (s3://BUCKET/PATH)",
    ]);
  });

  it("refuses a regex that does not compile, on inputs of tasks too", async () => {
    const src = `workflow:
  name: wf
  tasks:
  - name: a
    image: alpine:3.18
    command: [true]
  - name: b
    image: alpine:3.18
    command: [true]
    inputs:
    - task: a
      regex: '(unclosed'
`;
    const found = await problems(src);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ code: "E_BAD_REGEX", path: "workflow.tasks[1].inputs[0].regex", line: 12 });
    expect(found[0]!.message).toContain("`(unclosed` is not a regular expression");
  });
});

describe("checkpoint:", () => {
  const withCheckpoints = (checkpoints: string) => `workflow:
  name: wf
  tasks:
  - name: t
    image: alpine:3.18
    command: [true]
    checkpoint:
${checkpoints}
`;

  it("accepts an absolute path or one in {{output}}, an s3:// URL with tokens, and a regex that compiles", async () => {
    const src = withCheckpoints(`    - {path: /workspace/ckpt, url: "s3://b/{{workflow_id}}/ckpt", frequency: 30m, regex: '.*\\.pt$'}
    - {path: "{{output}}/ckpt", url: s3://b/out, frequency: 10s}`);
    expect(await problems(src)).toEqual([]);
  });

  it("refuses a relative path, another scheme and a regex that does not compile, each at its place (one checkpoint or a list)", async () => {
    const listed = await problems(withCheckpoints(`    - {path: ckpt, url: gs://b/x, frequency: 1m, regex: '(bad'}`));
    // In the order of the file.
    expect(listed.map((f) => [f.code, f.path])).toEqual([
      ["E_CHECKPOINT_PATH", "workflow.tasks[0].checkpoint[0].path"],
      ["E_DATA_URL", "workflow.tasks[0].checkpoint[0].url"],
      ["E_BAD_REGEX", "workflow.tasks[0].checkpoint[0].regex"],
    ]);
    expect(listed[0]!.message).toBe("checkpoint path `ckpt` is not absolute");
    const single = await problems(withCheckpoints(`      path: ckpt\n      url: s3://b/x\n      frequency: 1m`));
    expect(single.map((f) => [f.code, f.path, f.line])).toEqual([["E_CHECKPOINT_PATH", "workflow.tasks[0].checkpoint.path", 8]]);
  });
});

describe("volumeMounts", () => {
  it("takes SRC or SRC:DEST, absolute paths without ..", async () => {
    const src = (mounts: string) => `workflow:
  name: wf
  tasks:
  - name: t
    image: alpine:3.18
    command: [true]
    volumeMounts: ${mounts}
`;
    expect(await problems(src('["/data", "/data:/mnt/data"]'))).toEqual([]);
    const found = await problems(src('["data:/mnt", "/data:/mnt/../etc"]'));
    expect(found.map((f) => [f.code, f.message])).toEqual([
      ["E_BAD_VOLUME_MOUNT", expect.stringContaining("`data` in `data:/mnt` is not an absolute path without `..`")],
      ["E_BAD_VOLUME_MOUNT", expect.stringContaining("`/mnt/../etc` in `/data:/mnt/../etc` is not an absolute path without `..`")],
    ]);
  });
});
