/**
 * What a task's `credentials:` give it, decided before the run starts (the
 * driver opens the credentials; data/task-credentials.ts decides): the
 * environment variables, the files, and the secret values every runtime
 * masks in the task's log. The engine adds them to the task's launches; it
 * never records them.
 */
export interface CredentialInjection {
  /** `{NAME: {ENV_VAR: key}}`: ENV_VAR set to the payload's `key`. */
  env: Readonly<Record<string, string>>;
  /** `{NAME: /dir}`: one file per payload key in /dir, mode 0400. */
  files: ReadonlyArray<{ path: string; contents: Buffer; mode: number }>;
  /** The values to mask (those of 8 characters or more of every credential the task uses). */
  secrets: readonly string[];
}

/** By task name (as written): the tasks that have `credentials:`. */
export type TaskCredentials = ReadonlyMap<string, CredentialInjection>;

/** A login for an image's registry (a REGISTRY credential), for the pull of that image only. */
export interface RegistryAuth {
  /** The registry's host[:port] (Docker Hub's is `registry-1.docker.io`). */
  host: string;
  username: string;
  password: string;
}

/** The login an image's pull uses, if any (the run owner's REGISTRY credentials decide). */
export type RegistryAuthority = (image: string) => RegistryAuth | undefined;
