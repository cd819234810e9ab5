/**
 * A container attempt an earlier troupe process started under a keeper (the
 * podman CLI's kept tasks, runtime/kept-task.ts), re-attached: followed
 * through its keeper's exit record, stopped by name through the engine, its
 * end told by troupe-init's verdict where it gave one. What a keeper alone
 * cannot say is asked of podman and of the control directory, so that such
 * an attempt never waits for ever: a container podman no longer knows (its
 * `podman run` would never return), a command never released (troupe-init
 * would wait at its barrier for ever).
 */
import { exitInfoOf, KeptMember } from "../kept-task.js";
import type { ExitInfo, TaskLaunch } from "../types.js";
import type { ContainerBackend } from "./backend.js";
import { readVerdict, releasedExit, releasedNonce } from "./verdict.js";

/** How long one listing of the engine's containers answers every kept attempt's look (one podman call, not one each). */
const LISTING_MS = 2_000;
const listings = new WeakMap<ContainerBackend, { at: number; names: Promise<Set<string> | undefined> }>();

function knownNames(backend: ContainerBackend): Promise<Set<string> | undefined> {
  let listing = listings.get(backend);
  if (!listing || Date.now() - listing.at > LISTING_MS) {
    listing = { at: Date.now(), names: backend.containerNames!() };
    listings.set(backend, listing);
  }
  return listing.names;
}

export interface KeptContainer {
  launch: TaskLaunch;
  /** The keeper's state directory. */
  keepDir: string;
  /** The attempt's control directory (troupe-init's files; its release's nonce beside it). */
  controlDir: string;
  /** The container's name. */
  name: string;
}

/** The attempt, or undefined when its fate cannot be known (no exit recorded, no keeper alive). */
export function attachKeptContainer(
  backend: ContainerBackend,
  { launch, keepDir, controlDir, name }: KeptContainer,
): KeptMember | undefined {
  // Released before this process began (the keeper's record says whether): troupe-init's verdict, checked.
  const verdict = () => readVerdict(controlDir, releasedNonce(controlDir));
  const outcome = (code: number): ExitInfo => releasedExit(code, verdict());
  return KeptMember.attach(launch, keepDir, {
    stop: (graceMs) => backend.stopContainer(name, graceMs),
    exitInfo: (exit) => (exit.released ? outcome(exit.code) : exitInfoOf(exit)),
    present: backend.containerNames && (() => knownNames(backend).then((names) => names?.has(name))),
    what: `podman no longer knows its container ${name}`,
    knownEnd: () => {
      const said = verdict();
      return said && releasedExit(said.code, said);
    },
    // The release writes its nonce first, then "go": without one, troupe-init still waits for its release.
    unreleased: () => releasedNonce(controlDir) === undefined,
  });
}
