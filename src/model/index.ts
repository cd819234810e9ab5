/**
 * The shared vocabulary of troupe: statuses and what they mean, priorities.
 * No Node side effects and no dependencies, so that every layer, the CLI's
 * light commands and the web UI may import it.
 */
export * from "./statuses.js";
export * from "./priorities.js";
export type * from "./records.js";
export * from "./run-layout.js";
export type * from "./reuse.js";
export * from "./storage-url.js";
export * from "./duration.js";
export * from "./task-paths.js";
