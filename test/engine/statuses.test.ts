/** The one transition table, and how a workflow's status follows from its groups'. */
import { describe, expect, it } from "vitest";
import {
  FAILURE_STATUSES,
  IllegalTransitionError,
  aggregateWorkflowStatus,
  checkTransition,
  isFailure,
  isFinal,
  type GroupStatus,
} from "../../src/engine/index.js";

function thrown(fn: () => void): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("checkTransition", () => {
  it("throws IllegalTransitionError naming the subject and the current status for COMPLETED -> RUNNING", () => {
    const error = thrown(() => checkTransition("task worker (retry 0)", "COMPLETED", "RUNNING"));
    expect(error).toBeInstanceOf(IllegalTransitionError);
    const illegal = error as IllegalTransitionError;
    expect(illegal.from).toBe("COMPLETED");
    expect(illegal.to).toBe("RUNNING");
    expect(illegal.subject).toBe("task worker (retry 0)");
    expect(illegal.message).toContain("COMPLETED");
    expect(illegal.message).toContain("task worker (retry 0)");
  });

  it.each([
    ["SUBMITTING", "WAITING"],
    ["WAITING", "SCHEDULING"],
    ["WAITING", "PROCESSING"],
    ["PROCESSING", "SCHEDULING"],
    ["SCHEDULING", "INITIALIZING"],
    ["INITIALIZING", "RUNNING"],
    ["RUNNING", "COMPLETED"],
    ["RUNNING", "RESCHEDULED"],
    ["RUNNING", "FAILED"],
    ["WAITING", "FAILED_UPSTREAM"],
    ["WAITING", "FAILED_CANCELED"],
    ["SCHEDULING", "FAILED_QUEUE_TIMEOUT"],
    ["RUNNING", "FAILED_EXEC_TIMEOUT"],
    ["INITIALIZING", "FAILED_START_ERROR"],
    ["INITIALIZING", "COMPLETED"],
    // A command restarted in place (a sibling was rescheduled): the same attempt goes on.
    ["RUNNING", "RUNNING"],
    // A restart takes over a group that completed in the run it restarts.
    ["WAITING", "COMPLETED"],
    ["PENDING", "RUNNING"],
  ])("allows %s -> %s", (from, to) => {
    expect(() => checkTransition("x", from, to)).not.toThrow();
  });

  it.each([
    ["COMPLETED", "RUNNING"],
    ["COMPLETED", "FAILED"],
    ["FAILED", "COMPLETED"],
    ["FAILED_UPSTREAM", "SCHEDULING"],
    ["FAILED_CANCELED", "RUNNING"],
    ["RESCHEDULED", "RUNNING"],
    ["RESCHEDULED", "INITIALIZING"],
    ["RUNNING", "WAITING"],
    ["RUNNING", "SCHEDULING"],
    ["RUNNING", "INITIALIZING"],
    ["WAITING", "RUNNING"],
    ["SUBMITTING", "COMPLETED"],
    ["SUBMITTING", "RUNNING"],
    ["SCHEDULING", "RUNNING"],
    ["WAITING", "RESCHEDULED"],
  ])("refuses %s -> %s, naming the current status", (from, to) => {
    const error = thrown(() => checkTransition("group g", from, to));
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect((error as IllegalTransitionError).from).toBe(from);
    expect((error as Error).message).toContain(`${from} -> ${to}`);
  });

  it("lets every status be the first (creation: from null)", () => {
    expect(() => checkTransition("x", null, "INITIALIZING")).not.toThrow();
  });

  it("lets no final status go anywhere", () => {
    for (const from of [...FAILURE_STATUSES, "COMPLETED", "RESCHEDULED"]) {
      expect(isFinal(from)).toBe(true);
      for (const to of ["WAITING", "SCHEDULING", "INITIALIZING", "RUNNING", "COMPLETED", "FAILED", "FAILED_CANCELED"]) {
        expect(() => checkTransition("x", from, to)).toThrow(IllegalTransitionError);
      }
    }
  });

  it("lets every unfinished status fail in any way", () => {
    for (const from of ["SUBMITTING", "WAITING", "PROCESSING", "SCHEDULING", "INITIALIZING", "RUNNING"]) {
      expect(isFinal(from)).toBe(false);
      for (const to of FAILURE_STATUSES) expect(() => checkTransition("x", from, to)).not.toThrow();
    }
  });

  it("knows failures from successes", () => {
    expect(isFailure("FAILED_UPSTREAM")).toBe(true);
    expect(isFailure("FAILED_SUBMISSION")).toBe(true);
    expect(isFailure("COMPLETED")).toBe(false);
    expect(isFailure("RESCHEDULED")).toBe(false);
  });
});

describe("aggregateWorkflowStatus", () => {
  const agg = (...groups: GroupStatus[]) => aggregateWorkflowStatus(groups);

  it("is COMPLETED when every group completed", () => {
    expect(agg("COMPLETED", "COMPLETED", "COMPLETED")).toBe("COMPLETED");
  });

  it("is RUNNING while any group is unfinished, failures or not", () => {
    expect(agg("COMPLETED", "RUNNING")).toBe("RUNNING");
    expect(agg("FAILED_CANCELED", "WAITING")).toBe("RUNNING");
    expect(agg("FAILED", "SCHEDULING", "COMPLETED")).toBe("RUNNING");
  });

  it("puts canceled before server error, exec timeout and queue timeout", () => {
    expect(agg("FAILED_QUEUE_TIMEOUT", "FAILED_EXEC_TIMEOUT", "FAILED_SERVER_ERROR", "FAILED_CANCELED", "FAILED")).toBe("FAILED_CANCELED");
  });

  it("puts server error before exec timeout and queue timeout", () => {
    expect(agg("FAILED_QUEUE_TIMEOUT", "FAILED_EXEC_TIMEOUT", "FAILED_SERVER_ERROR", "FAILED")).toBe("FAILED_SERVER_ERROR");
  });

  it("puts exec timeout before queue timeout", () => {
    expect(agg("FAILED_QUEUE_TIMEOUT", "FAILED_EXEC_TIMEOUT", "FAILED", "COMPLETED")).toBe("FAILED_EXEC_TIMEOUT");
  });

  it("lets a queue timeout win over other failures", () => {
    expect(agg("FAILED", "FAILED_QUEUE_TIMEOUT", "FAILED_START_ERROR")).toBe("FAILED_QUEUE_TIMEOUT");
  });

  it("uses the one common reason when every failed group failed for it", () => {
    expect(agg("FAILED_START_ERROR", "COMPLETED", "FAILED_START_ERROR")).toBe("FAILED_START_ERROR");
    expect(agg("FAILED_IMAGE_PULL")).toBe("FAILED_IMAGE_PULL");
  });

  it("ignores FAILED_UPSTREAM when picking the reason", () => {
    expect(agg("FAILED_START_ERROR", "FAILED_UPSTREAM", "FAILED_UPSTREAM", "COMPLETED")).toBe("FAILED_START_ERROR");
    expect(agg("FAILED_BACKEND_ERROR", "FAILED_UPSTREAM")).toBe("FAILED_BACKEND_ERROR");
  });

  it("is FAILED when the failed groups failed for different reasons", () => {
    expect(agg("FAILED_START_ERROR", "FAILED_IMAGE_PULL", "COMPLETED")).toBe("FAILED");
    expect(agg("FAILED", "FAILED_EVICTED", "FAILED_UPSTREAM")).toBe("FAILED");
  });

  it("is FAILED for a plain failure with its upstream victims", () => {
    expect(agg("COMPLETED", "FAILED", "FAILED_UPSTREAM")).toBe("FAILED");
  });
});
