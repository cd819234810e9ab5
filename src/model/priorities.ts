/** The priorities of a server run (NORMAL unless the submission says otherwise), highest first. */
export const PRIORITIES = ["HIGH", "NORMAL", "LOW"] as const;
export type Priority = (typeof PRIORITIES)[number];
