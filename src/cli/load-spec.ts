/** Reading and validating the workflow file a command was given. */
import { resolve } from "node:path";
import { baseDirOf, loadWorkflowSpec, type LoadResult } from "../spec/index.js";
import { readWorkflowFile, type SpecOptions } from "./shared.js";

export interface LoadedSpec extends LoadResult {
  /** How the file is named in messages. */
  displayName: string;
}

/** Read and validate a workflow file (`-` reads standard input). */
export async function loadSpecFile(file: string, options: SpecOptions): Promise<LoadedSpec> {
  const fromStdin = file === "-";
  const bytes = readWorkflowFile(file);
  const result = await loadWorkflowSpec(bytes, {
    baseDir: fromStdin ? process.cwd() : baseDirOf(resolve(file)),
    variables: { set: options.set, setString: options.setString },
    maxRetries: options.maxRetries,
  });
  return { ...result, displayName: fromStdin ? "<stdin>" : file };
}
