/**
 * A server run's credentials are its owner's (the user who submitted it):
 * the tasks' `credentials:` opened from that user's credentials, `url:` data
 * moved with that user's DATA credentials, images pulled with that user's
 * REGISTRY credentials, inputs from that user's own other workflows, never anyone else's. Opened
 * when the run is submitted (a name or key the user does not have refuses the
 * submission, naming it) and again when a restarted server resumes the run.
 */
import type { CredentialUses } from "../data/index.js";
import {
  checkStoredCredentialUse,
  credentialDataPlane,
  credentialRegistryAuth,
  openTaskCredentials,
  type EngineSettings,
} from "../drive/index.js";
import type { RegistryAuthority } from "../port/index.js";
import { TroupeError } from "../errors/index.js";
import type { CompiledWorkflow } from "../plan/index.js";
import { foreignOutputs, type RunStore } from "../store/index.js";
import { refusal, type Refusal } from "./error-reply.js";

export type RunCredentials = Pick<EngineSettings, "credentials" | "data" | "foreignOutputs" | "foreignStored"> & {
  registryAuth: RegistryAuthority;
};

/**
 * `user`'s credentials for `plan`'s tasks and data, and the outputs of
 * `user`'s own workflows its tasks take as inputs (`task: WORKFLOW_ID:TASK`:
 * never another user's); throws (a TroupeError naming the task and what it
 * lacks) when one cannot be given.
 */
export function ownerCredentials(store: RunStore, user: string, plan: CompiledWorkflow): RunCredentials {
  const foreign = foreignOutputs(store, plan, (record) => record.user === user);
  if (foreign.problems.length > 0) throw new TroupeError("E_INPUT_UNAVAILABLE", foreign.problems.join("; "), "usage");
  const table = store.credentialsOf(user);
  return {
    credentials: openTaskCredentials(table, plan),
    data: credentialDataPlane(table),
    registryAuth: credentialRegistryAuth(table),
    foreignOutputs: foreign.outputs,
    foreignStored: foreign.stored,
  };
}

/** A dry run's check of the tasks' `credentials:` against `user`'s (names and keys; no payload opened). */
export function checkedCredentialUse(store: RunStore, user: string, uses: CredentialUses | undefined): Refusal | undefined {
  if (!uses) return undefined;
  try {
    checkStoredCredentialUse(store.credentialsOf(user), uses);
    return undefined;
  } catch (error) {
    if (!(error instanceof TroupeError)) throw error;
    return refusalOf(error);
  }
}

function refusalOf(error: TroupeError): Refusal {
  return refusal(error.kind, error.code, error.hint ? `${error.message}: ${error.hint}` : error.message);
}

/** The same for a submission: a refusal (with the hint, which the API's answer has no field for) instead of a throw. */
export function submittedCredentials(store: RunStore, user: string, plan: CompiledWorkflow): RunCredentials | Refusal {
  try {
    return ownerCredentials(store, user, plan);
  } catch (error) {
    if (!(error instanceof TroupeError)) throw error;
    return refusalOf(error);
  }
}
