/** Reading and validating the workflow file a command was given. */
import { resolve } from "node:path";
import { baseDirOf, loadWorkflowSpec, MAX_SPEC_BYTES, type LoadResult } from "../spec/index.js";
import { readWorkflowFile, type SpecOptions } from "./shared.js";

export interface LoadedSpec extends LoadResult {
  /** How the file is named in messages. */
  displayName: string;
  /** The file as read (what a run records, and a restart renders again). */
  text: string;
}

/** Read and validate a workflow file (`-` reads standard input). */
export async function loadSpecFile(file: string, options: SpecOptions): Promise<LoadedSpec> {
  const fromStdin = file === "-";
  const read = readWorkflowFile(file, MAX_SPEC_BYTES);
  const result = await loadWorkflowSpec(read.bytes, {
    truncated: read.truncated,
    baseDir: fromStdin ? process.cwd() : baseDirOf(resolve(file)),
    variables: { set: options.set, setString: options.setString },
    maxRetries: options.maxRetries,
  });
  return { ...result, displayName: fromStdin ? "<stdin>" : file, text: read.bytes.toString("utf8") };
}
