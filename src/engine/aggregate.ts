/** The workflow's status from its groups' statuses (SPEC-REFERENCE "Workflow aggregation"). */
import { isFinal, type GroupStatus, type WorkflowStatus } from "./statuses.js";

const PRECEDENCE = ["FAILED_CANCELED", "FAILED_SERVER_ERROR", "FAILED_EXEC_TIMEOUT", "FAILED_QUEUE_TIMEOUT"] as const;

export function aggregateWorkflowStatus(groups: readonly GroupStatus[]): WorkflowStatus {
  if (groups.some((s) => !isFinal(s))) return "RUNNING";
  if (groups.every((s) => s === "COMPLETED")) return "COMPLETED";
  for (const status of PRECEDENCE) if (groups.includes(status)) return status;
  const reasons = new Set(groups.filter((s) => s !== "COMPLETED" && s !== "FAILED_UPSTREAM"));
  if (reasons.size === 1) return [...reasons][0] as WorkflowStatus;
  return "FAILED";
}
