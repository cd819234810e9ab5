import { describe, expect, it } from "vitest";
import { checkTransition, recordRunNotStarted, type RunRecorder } from "../../src/engine/index.js";
import type { StatusUpdate, Transition } from "../../src/store/index.js";

describe("recordRunNotStarted", () => {
  it("records a run whose runtime could not open as FAILED_BACKEND_ERROR, with the reason, through a legal transition", () => {
    const transitions: Transition[] = [];
    const updates: StatusUpdate[] = [];
    const recorder: RunRecorder = {
      recordTransition: (_id, t) => transitions.push(t),
      updateRun: (_id, u) => updates.push(u),
      updateGroup: () => undefined,
      updateTask: () => undefined,
      logPath: () => "",
    };
    recordRunNotStarted(recorder, "wf-1", "no bridge for the run", 1234);
    expect(transitions).toEqual([
      { subject: { kind: "run" }, from: "PENDING", to: "FAILED_BACKEND_ERROR", reason: "no bridge for the run", time: 1234 },
    ]);
    expect(() => checkTransition("workflow wf-1", "PENDING", "FAILED_BACKEND_ERROR")).not.toThrow();
    expect(updates).toEqual([{ status: "FAILED_BACKEND_ERROR", endTime: 1234 }]);
  });
});
