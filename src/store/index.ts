/** store/: the SQLite history of runs under TROUPE_HOME and where their logs go. */
export { RunStore } from "./run-store.js";
export { INITIAL_STATUS } from "./writer.js";
export { readFrom, tailOffset } from "./log-files.js";
export { createdRunRecord } from "./record-rows.js";
export { PRIORITIES } from "./types.js";
export { RUN_STATUSES, describeFilters } from "./run-filter.js";
export type { CancelRequest } from "./cancel-requests.js";
export type * from "./types.js";
export type { OwnedRun } from "./orphans.js";
export { completedGroups, type RestartShape, type RunHistory } from "./restart-origins.js";
export { foreignOutputKey, foreignOutputs, recordDataStore, recordedDataStore } from "./foreign-outputs.js";
export type { CredentialTable, CredentialSummary } from "./credentials.js";
export { KEY_FILE_VARIABLE } from "./credential-key.js";
