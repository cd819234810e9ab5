/**
 * Which runtime `troupe run` uses: the one asked for (--runtime, or
 * TROUPE_RUNTIME), else containers when an engine answers and can start
 * containers (runtime/container/engine-check.ts), else the host.
 * `--isolation` is a host runtime option, so it implies the host runtime.
 */
import { TroupeError, UsageError } from "../errors/index.js";
import {
  checkEngine,
  connectEngine,
  ContainerRuntime,
  HostRuntime,
  type ContainerBackend,
  type EngineName,
  type EngineRefusal,
  type Isolation,
  type PullPolicy,
  type Runtime,
  type TaskUser,
} from "../runtime/index.js";
import { troupeHome } from "./home.js";

export interface RuntimeChoice {
  runtime?: "host" | "container";
  isolation?: Isolation;
  engine?: EngineName;
  pull?: PullPolicy;
  /** Host runtime, as root: who tasks run as (default nobody). */
  taskUser?: TaskUser;
}

export interface ChosenRuntime {
  runtime: Runtime;
  /** Why it is not the container runtime, when the choice was automatic. */
  note?: string;
}

/** An engine that answered, and whether it can start containers (its refusal when it cannot). */
export interface CheckedEngine {
  backend: ContainerBackend;
  refusal: EngineRefusal;
}

type EngineAnswer = Promise<CheckedEngine>;

function askedRuntime(options: RuntimeChoice): "host" | "container" | undefined {
  const fromEnv = process.env.TROUPE_RUNTIME;
  if (fromEnv !== undefined && fromEnv !== "host" && fromEnv !== "container")
    throw new UsageError(`TROUPE_RUNTIME=${fromEnv}: expected host or container`);
  // Options of one runtime imply it.
  const implied = options.isolation ? "host" : options.engine || options.pull ? "container" : undefined;
  if (options.runtime && implied && options.runtime !== implied)
    throw new UsageError(`--runtime ${options.runtime} does not take ${implied === "host" ? "--isolation" : "--engine or --pull"}`);
  return options.runtime ?? implied ?? fromEnv;
}

/**
 * Starts asking the container engine whether it answers and can start
 * containers (unless the host runtime is asked for), so that the answer (a
 * podman process, tens of milliseconds; the first time, a tiny container)
 * comes while the workflow file is read; for chooseRuntime.
 */
export function askEngine(options: RuntimeChoice): EngineAnswer | undefined {
  try {
    if (askedRuntime(options) === "host") return undefined;
  } catch {
    return undefined; // chooseRuntime says why
  }
  const home = troupeHome();
  const answer = connectEngine(options.engine).then(async (backend) => ({ backend, refusal: await checkEngine(backend, home) }));
  answer.catch(() => undefined); // awaited (and reported) by chooseRuntime, if the run gets that far
  return answer;
}

/** `sharedEngine`: the engine's connection is a server pool's, kept across its runs (see poolFrom). */
export async function chooseRuntime(
  options: RuntimeChoice,
  images: Set<string>,
  engine: EngineAnswer | undefined = askEngine(options),
  sharedEngine = false,
): Promise<ChosenRuntime> {
  const asked = askedRuntime(options);
  const host = () => {
    const runtime = new HostRuntime({ isolation: options.isolation ?? "netns", home: troupeHome(), taskUser: options.taskUser });
    runtime.noteImages(images);
    return runtime;
  };
  if (asked === "host") return { runtime: host() };
  let checked: CheckedEngine;
  try {
    checked = await (engine ?? askEngine(options)!);
  } catch (error) {
    if (asked === "container") throw new UsageError(`--runtime container: ${(error as Error).message}`);
    return { runtime: host(), note: `${(error as Error).message}: tasks run on the host runtime` };
  }
  const { backend, refusal } = checked;
  if (refusal) {
    const engineName = backend.describe();
    // Closing the connection of an engine that is not used can only fail by being closed already.
    if (!sharedEngine) void backend.close().catch(() => undefined);
    if (asked === "container")
      throw new TroupeError(
        "E_ENGINE_CANNOT_START",
        `the container runtime was asked for, but ${engineName} cannot start containers here: ${refusal.reason}`,
        "usage",
        `to fix it, ${refusal.hint}; or run with --runtime host`,
      );
    return {
      runtime: host(),
      note: `${engineName} cannot start containers here (${refusal.reason}): tasks run on the host runtime; to use containers, ${refusal.hint}`,
    };
  }
  const runtime = new ContainerRuntime({ backend, pull: options.pull ?? "missing", sharedBackend: sharedEngine, home: troupeHome() });
  runtime.noteImages(images);
  return { runtime };
}
