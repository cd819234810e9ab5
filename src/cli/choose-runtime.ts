/**
 * Which runtime `troupe run` uses: the one asked for (--runtime, or
 * TROUPE_RUNTIME), else containers when an engine answers, else the host.
 * `--isolation` is a host runtime option, so it implies the host runtime.
 */
import { UsageError } from "../errors/index.js";
import {
  connectEngine,
  ContainerRuntime,
  HostRuntime,
  type EngineName,
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

type EngineAnswer = ReturnType<typeof connectEngine>;

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
 * Starts asking the container engine whether it answers (unless the host
 * runtime is asked for), so that the answer (a podman process, tens of
 * milliseconds) comes while the workflow file is read; for chooseRuntime.
 */
export function askEngine(options: RuntimeChoice): EngineAnswer | undefined {
  try {
    if (askedRuntime(options) === "host") return undefined;
  } catch {
    return undefined; // chooseRuntime says why
  }
  const answer = connectEngine(options.engine);
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
  try {
    const backend = await (engine ?? connectEngine(options.engine));
    const runtime = new ContainerRuntime({ backend, pull: options.pull ?? "missing", sharedBackend: sharedEngine });
    runtime.noteImages(images);
    return { runtime };
  } catch (error) {
    if (asked === "container") throw new UsageError(`--runtime container: ${(error as Error).message}`);
    return { runtime: host(), note: `${(error as Error).message}: tasks run on the host runtime` };
  }
}
