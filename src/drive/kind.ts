/**
 * What the registry knows of one kind of runtime: its name, the options
 * `--runtime NAME` flags and a server pool's fields give it (a zod object,
 * one key per option, as a pool's YAML spells it), whether it can run here,
 * and how to make its pool backend. A new runtime is one folder under
 * runtime/ and one such entry (kinds/, listed in registry.ts).
 */
import type { z } from "zod";
import type { TroupeError } from "../errors/index.js";
import type { PoolBackend } from "../port/index.js";

/** A pool's capacity, where the runtime knows it (a cluster's nodes): what its groups can ever ask for at once. */
export interface KnownCapacity {
  cpu: number;
  gpu: number;
  memoryBytes: number;
}

/** How a pool would run one group, said in words, and why it never could (a cluster's nodes), or undefined. */
export interface GroupPlacement {
  how: string;
  refusal?: string;
}

/** What one member of a group asks for. */
export interface MemberDemand {
  cpu: number;
  gpu: number;
  memoryBytes: number;
}

/** A pool's way of placing groups, where its check learnt it (a cluster's nodes and the pool's spread). */
export type GroupPlacer = (members: readonly MemberDemand[]) => GroupPlacement;

export interface CheckContext {
  /** troupe's home: runtimes hide it from tasks and keep what they learnt of this machine there. */
  home: string;
}

export interface PoolContext extends CheckContext {
  /** The run's images (`troupe run`): said in notices and looked for early. Empty for a server's pool. */
  images: ReadonlySet<string>;
  /** The pool serves many runs (a server's): what it connects to is kept across them. */
  longLived: boolean;
}

/** A kind that can run here, with what its check found (a connection, say), ready to make backends. */
export interface Available {
  ok: true;
  create(context: PoolContext): PoolBackend;
  /** The capacity the check found (a cluster's), which the pool has unless told otherwise; undefined: this machine's. */
  capacity?: KnownCapacity;
  /** How it would place each group, where it knows (a cluster's), for plan-time checks and `troupe plan`. */
  placeGroup?: GroupPlacer;
  /** It will not be used after all (the workflow was refused): let go of what the check holds. */
  release(): void;
}

export interface Unavailable {
  ok: false;
  /** Thrown when this kind was asked for. */
  error: TroupeError;
  /** Why not, said when this kind was a candidate of an automatic choice and another one runs instead. */
  why: string;
  /** What would make it run here, said after that. */
  remedy?: string;
}

export type Availability = Available | Unavailable;

/** A runtime kind, its options' types erased (see `defineRuntimeKind`). */
export interface RuntimeKind {
  readonly name: string;
  /** What it is, in a few words (help texts, errors). */
  readonly summary: string;
  /** Its options, as a pool's fields (snake_case; flags are the same words with dashes). */
  readonly options: z.ZodObject;
  /** Options that, given, choose this kind when none is named. */
  readonly impliedBy: readonly string[];
  /** A candidate when no kind is named and no option implies one; tried in the registry's order. */
  readonly automatic: boolean;
  /** Whether it can run here; `options` have passed `options`. May take a while: it starts before the workflow is read. */
  check(options: Record<string, unknown>, context: CheckContext): Promise<Availability>;
}

export interface RuntimeKindDefinition<Options, Ready> {
  name: string;
  summary: string;
  options: z.ZodObject & { _zod: { output: Options } };
  impliedBy: readonly string[];
  automatic: boolean;
  check(options: Options, context: CheckContext): Promise<{ ok: true; ready: Ready } | Unavailable>;
  create(options: Options, ready: Ready, context: PoolContext): PoolBackend;
  /** The capacity its check found (a cluster's nodes). */
  capacity?(ready: Ready): KnownCapacity;
  /** How it would place a group (a cluster's nodes), with what its check found. */
  placeGroup?(options: Options, ready: Ready, members: readonly MemberDemand[]): GroupPlacement;
  release?(ready: Ready): void;
}

/** An entry of the registry, typed where it is written and erased for the list. */
export function defineRuntimeKind<Options, Ready>(definition: RuntimeKindDefinition<Options, Ready>): RuntimeKind {
  const { name, summary, options, impliedBy, automatic } = definition;
  return {
    name,
    summary,
    options,
    impliedBy,
    automatic,
    async check(raw, context) {
      const parsed = options.parse(raw) as Options;
      const found = await definition.check(parsed, context);
      if (!found.ok) return found;
      return {
        ok: true,
        create: (pool) => definition.create(parsed, found.ready, pool),
        capacity: definition.capacity?.(found.ready),
        placeGroup: definition.placeGroup && ((members) => definition.placeGroup!(parsed, found.ready, members)),
        release: () => definition.release?.(found.ready),
      };
    },
  };
}
