/**
 * data/: moving `url:` inputs and outputs between object stores and
 * directories (the port's DataPlane), and what a credential is. Deciding
 * (credential-payload.ts, transfer-plan.ts, store-errors.ts) apart from doing
 * (s3-store.ts through the AWS SDK, data-plane.ts).
 */
export {
  CREDENTIAL_TYPES,
  checkCredentialName,
  checkPayload,
  credentialFor,
  dataCredentialFrom,
  parseCredentialType,
  type CredentialType,
  type DataCredential,
} from "./credential-payload.js";
export { objectStoreDataPlane, filesUnder, type ObjectStoreOptions } from "./data-plane.js";
export { pathFilter } from "./transfer-plan.js";
export { imageScope, normalizeScope, registryAuthFor, registryLoginFrom, type RegistryLogin } from "./registry-auth.js";
export {
  checkCredentialUse,
  credentialNames,
  credentialUsesOf,
  type CredentialUses,
  secretValues,
  taskCredentials,
  CREDENTIAL_FILE_MODE,
  type OpenedCredential,
} from "./task-credentials.js";
