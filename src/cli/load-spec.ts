/** Reading and validating the workflow file a command was given. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { NotFoundError, UsageError } from "../errors/index.js";
import { baseDirOf, loadWorkflowSpec, type LoadResult } from "../spec/index.js";
import type { SpecOptions } from "./shared.js";

export interface LoadedSpec extends LoadResult {
  /** How the file is named in messages. */
  displayName: string;
}

/** Read and validate a workflow file (`-` reads standard input). */
export async function loadSpecFile(file: string, options: SpecOptions): Promise<LoadedSpec> {
  const fromStdin = file === "-";
  let bytes: Buffer;
  try {
    bytes = fromStdin ? readFileSync(0) : readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new NotFoundError("E_FILE_NOT_FOUND", `${file}: no such file`);
    if (code === "EISDIR") throw new UsageError(`${file} is a directory, not a workflow file`);
    throw new NotFoundError("E_FILE_UNREADABLE", `${file}: cannot read (${code ?? String(error)})`);
  }
  const result = await loadWorkflowSpec(bytes, {
    baseDir: fromStdin ? process.cwd() : baseDirOf(resolve(file)),
    variables: { set: options.set, setString: options.setString },
    maxRetries: options.maxRetries,
  });
  return { ...result, displayName: fromStdin ? "<stdin>" : file };
}
