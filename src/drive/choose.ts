/**
 * Which runtime a run or a pool gets: the kind named (`--runtime`, a pool's
 * `runtime:`), else the one its options imply (`--isolation`: the host),
 * else a default (TROUPE_RUNTIME), else the first automatic kind that can
 * run here, saying why the ones before it cannot. Checks start as soon as
 * the request is made, so that a slow one (asking a container engine)
 * answers while the workflow file is read.
 */
import { TroupeError, UsageError } from "../errors/index.js";
import type { PoolBackend } from "../port/index.js";
import type { Availability, CheckContext, GroupPlacer, KnownCapacity, PoolContext, RuntimeKind } from "./kind.js";
import { kindsTaking, RUNTIME_KINDS, runtimeKind, unknownRuntimeKind } from "./registry.js";

/** How a request's author names what they gave, for errors. */
export interface RequestNaming {
  /** The kind, as they would write it: `--runtime host`, `runtime host`. */
  kind(name: string): string;
  /** An option: `--task-user`, `task_user`. */
  option(field: string): string;
  /** Before every message: `pool gpu: `. */
  prefix?: string;
}

export interface RuntimeRequest {
  /** The kind asked for. */
  kind?: string;
  /** The kind to use when neither `kind` nor the options say, and where it is set (`TROUPE_RUNTIME=host`). */
  fallback?: { kind: string; where: string };
  /** Option values by field (a pool's spelling); undefined: not given. */
  options: Readonly<Record<string, unknown>>;
  naming: RequestNaming;
}

/** The kind a request settles on (undefined: automatic) and the options each candidate takes; UsageError when it is wrong. */
export function resolveRequest(request: RuntimeRequest): { kind?: RuntimeKind; candidates: RuntimeKind[] } {
  const { naming } = request;
  const prefix = naming.prefix ?? "";
  const fail = (message: string) => new UsageError(prefix + message);
  const named = (name: string | undefined, where: (name: string) => string) => {
    if (name === undefined) return undefined;
    const kind = runtimeKind(name);
    if (!kind) throw fail(`${where(name)}: ${unknownRuntimeKind(name)}`);
    return kind;
  };
  const asked = named(request.kind, naming.kind);
  const given = Object.keys(request.options).filter((field) => request.options[field] !== undefined);
  for (const field of given) if (kindsTaking(field).length === 0) throw fail(`${naming.option(field)}: no runtime takes it`);
  const implying = new Map<RuntimeKind, string>();
  for (const field of given)
    for (const kind of RUNTIME_KINDS) if (kind.impliedBy.includes(field) && !implying.has(kind)) implying.set(kind, field);
  if (!asked && implying.size > 1) {
    const [a, b] = [...implying.keys()] as [RuntimeKind, RuntimeKind];
    throw fail(
      `${naming.option(implying.get(a)!)} is an option of the ${a.name} runtime and ${naming.option(implying.get(b)!)} of the ${b.name} runtime: say which, ${naming.kind(a.name)} or ${naming.kind(b.name)}`,
    );
  }
  const kind = asked ?? [...implying.keys()][0] ?? named(request.fallback?.kind, () => request.fallback!.where);
  if (kind) {
    const foreign = given.filter((field) => !(field in kind.options.shape));
    if (foreign.length > 0) {
      const implied =
        !asked && implying.has(kind)
          ? `${naming.option(implying.get(kind)!)} means the ${kind.name} runtime, which`
          : naming.kind(kind.name);
      throw fail(`${implied} does not take ${foreign.map(naming.option).join(" or ")}`);
    }
  }
  const candidates = kind ? [kind] : RUNTIME_KINDS.filter((k) => k.automatic);
  for (const candidate of candidates) checkOptions(candidate, request, fail);
  return { kind, candidates };
}

function checkOptions(kind: RuntimeKind, request: RuntimeRequest, fail: (message: string) => UsageError): void {
  const parsed = kind.options.safeParse(optionsOf(kind, request.options));
  if (parsed.success) return;
  const issue = parsed.error.issues[0]!;
  const field = String(issue.path[0]);
  throw fail(`${request.naming.option(field)} ${String(request.options[field])}: ${issue.message}`);
}

function optionsOf(kind: RuntimeKind, options: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(kind.options.shape).flatMap((field) => (options[field] === undefined ? [] : [[field, options[field]]])),
  );
}

export interface ChosenRuntime {
  backend: PoolBackend;
  /** Its capacity, where the runtime knows it (a cluster's). */
  capacity?: KnownCapacity;
  /** Why it is not the kind tried first, when the choice was automatic. */
  note?: string;
}

/** A runtime being chosen: its checks run from the request on. */
export interface RuntimeChoice {
  /** The backend of the first candidate that can run here; throws the asked kind's error when it cannot. */
  settle(pool: Omit<PoolContext, "home">): Promise<ChosenRuntime>;
  /**
   * The capacity of the kind asked for, where it knows it (a cluster's, read by its check), for the
   * plan-time check before the runtime is settled; undefined otherwise (this machine's: the caller's).
   */
  knownCapacity(): Promise<KnownCapacity | undefined>;
  /** How the kind asked for would place each group, where it knows (a cluster's); undefined otherwise. */
  knownPlacement(): Promise<GroupPlacer | undefined>;
  /** Throws the kind's error when the one kind asked for cannot run here (nothing is created). */
  checkAsked(): Promise<void>;
  /** Nothing will run: let go of what the checks hold (connections). */
  drop(): void;
}

/** Checks the request (UsageError when it is wrong) and starts the checks of its candidates. */
export function requestRuntime(request: RuntimeRequest, context: CheckContext): RuntimeChoice {
  const { candidates } = resolveRequest(request);
  const prefix = request.naming.prefix ?? "";
  const checks = candidates.map((kind) => {
    const checking = kind.check(optionsOf(kind, request.options), context).catch((error: Error): Availability => ({
      ok: false,
      error: error instanceof TroupeError ? error : new TroupeError("E_RUNTIME", `the ${kind.name} runtime: ${error.message}`, "system"),
      why: error.message,
    }));
    return { kind, checking };
  });
  let chosen: number | undefined;
  const releaseOthers = () =>
    checks.forEach(({ checking }, i) => i !== chosen && void checking.then((found) => found.ok && found.release()));
  return {
    async settle(pool) {
      const refusals: Array<{ kind: RuntimeKind; why: string; remedy?: string }> = [];
      for (const [i, { kind, checking }] of checks.entries()) {
        const found = await checking;
        if (!found.ok) {
          if (candidates.length === 1 || i === checks.length - 1) {
            releaseOthers();
            const { error } = found;
            throw prefix ? new TroupeError(error.code, prefix + error.message, error.kind, error.hint) : error;
          }
          refusals.push({ kind, why: found.why, remedy: found.remedy });
          continue;
        }
        chosen = i;
        releaseOthers();
        let backend: PoolBackend;
        try {
          backend = found.create({ ...pool, home: context.home });
        } catch (error) {
          found.release();
          throw error;
        }
        const note = refusals
          .map(({ why, remedy }) => `${why}: tasks run on the ${kind.name} runtime${remedy ? `; ${remedy}` : ""}`)
          .join("; ");
        return { backend, note: note || undefined, capacity: found.capacity };
      }
      throw new Error("a runtime choice without candidates");
    },
    drop: releaseOthers,
    async knownCapacity() {
      if (checks.length !== 1) return undefined;
      const found = await checks[0]!.checking;
      return found.ok ? found.capacity : undefined;
    },
    async checkAsked() {
      if (checks.length !== 1) return;
      const found = await checks[0]!.checking;
      if (!found.ok) throw found.error;
    },
    async knownPlacement() {
      if (checks.length !== 1) return undefined;
      const found = await checks[0]!.checking;
      return found.ok ? found.placeGroup : undefined;
    },
  };
}
