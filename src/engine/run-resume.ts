/**
 * Going on with a run another troupe process was driving (a server,
 * restarted): groups that were running keep their capacity and placements,
 * and their running attempts are found again through the group's handle,
 * by the id the store recorded, then followed by the same events as any
 * attempt; groups still preparing start again in a new attempt (no command
 * of theirs had started); waiting and scheduling groups go on as usual.
 */
import type { CompiledGroup, CompiledWorkflow } from "../plan/index.js";
import type { Clock } from "./clock.js";
import { stopAttempt, type GroupLauncher } from "./group-launch.js";
import type { ResumedGroup, ResumedRun } from "./resume.js";
import type { Placements, RunState } from "./run-state.js";
import { PlatformExitCode, isFinal, type TaskStatus } from "./statuses.js";

/** What resuming may use of the run. */
export interface ResumeSite {
  readonly state: RunState;
  readonly plan: CompiledWorkflow;
  readonly clock: Clock;
  readonly launcher: GroupLauncher;
  readonly reused?: ReadonlyMap<number, { tasks: ReadonlyArray<{ outputDir: string }> }>;
  outputDirOf(g: number, t: number, retryId: number): string;
  enterWaiting(g: number): void;
  reserve(g: number, had?: number[][] | null): void;
  newAttempt(g: number, t: number, status: TaskStatus, reason: string): void;
  finishTask(g: number, t: number, status: TaskStatus, reason: string, exitCode: number | null): void;
}

export function resumeRun(site: ResumeSite, resumed: ResumedRun): void {
  const { state } = site;
  state.restore(resumed);
  const now = site.clock.now();
  const preparing: number[] = [];
  site.plan.groups.forEach((group, g) => {
    site.enterWaiting(g);
    const recorded = resumed.groups[g]!;
    const reused = site.reused?.get(g);
    group.tasks.forEach((_, t) => {
      const task = state.tasks[g]![t]!;
      task.outputDir = reused?.tasks[t]?.outputDir ?? site.outputDirOf(g, t, task.retryId);
    });
    const status = state.groups[g]!.status;
    if (status === "WAITING" || status === "SCHEDULING") {
      if (status === "SCHEDULING") state.groups[g]!.queuedAt = now;
      return;
    }
    state.groups[g]!.placements = recordedPlacements(group, recorded);
    // Attempts that ended as far as the record goes, but whose processes the last troupe may still have been stopping.
    group.tasks.forEach((_, t) => {
      if (isFinal(state.tasks[g]![t]!.status ?? "WAITING")) void stopLeftover(site, g, t, recorded);
    });
    if (status === "INITIALIZING") preparing.push(g);
    else if (status === "RUNNING") reattachGroup(site, g, recorded);
  });
  // After every running group has taken back its GPUs: a new attempt must not be given one of those.
  for (const g of preparing) restartPreparing(site, g);
}

/**
 * Where the members were. Only the addresses matter to a re-attached attempt
 * (its command, with its `{{host:X}}` resolved, is already running).
 */
function recordedPlacements(group: CompiledGroup, recorded: ResumedGroup): Placements {
  return Object.fromEntries(
    group.tasks.map((task, t) => {
      const address = recorded.tasks[t]!.ip ?? "";
      return [task.name, { address, hostName: address }];
    }),
  );
}

/** A group whose sandboxes were being prepared when the last process ended: a new attempt for each unfinished member. */
function restartPreparing(site: ResumeSite, g: number): void {
  const { state } = site;
  const members = site.plan.groups[g]!.tasks.map((_, t) => t).filter((t) => !isFinal(state.tasks[g]![t]!.status ?? "WAITING"));
  site.reserve(g);
  // Placed again, as a new group would be.
  state.groups[g]!.placements = undefined;
  for (const t of members) {
    state.setTask(g, t, "RESCHEDULED", "troupe restarted before the group's commands started", { endTime: site.clock.now() });
    site.newAttempt(g, t, "INITIALIZING", "new attempt: troupe restarted before the group's commands started");
  }
  void site.launcher.launch(g, members);
}

function reattachGroup(site: ResumeSite, g: number, recorded: ResumedGroup): void {
  const { state } = site;
  const group = site.plan.groups[g] as CompiledGroup;
  site.reserve(g, recorded.gpus);
  state.groups[g]!.runningAt = recorded.startTime ?? site.clock.now();
  group.tasks.forEach((_, t) => {
    const task = state.tasks[g]![t]!;
    if (task.status === "RUNNING") {
      const retryId = task.retryId;
      void site.launcher.reattach(g, t, recorded.handle ?? undefined).then((found) => {
        // The group may have ended meanwhile (a sibling's re-attach found nothing).
        if (found && task.attempt && (task.retryId !== retryId || isFinal(task.status ?? "WAITING")))
          void stopAttempt(task.attempt, site.launcher.grace());
      });
    } else if (task.status === "RESCHEDULED") {
      // Between two attempts: the next one was never made.
      site.newAttempt(g, t, "INITIALIZING", "new attempt after troupe restarted");
      site.finishTask(g, t, "FAILED_SERVER_ERROR", "troupe restarted before this task's next attempt started", PlatformExitCode.SERVER_ERROR);
    } else if (!isFinal(task.status ?? "WAITING"))
      site.finishTask(g, t, "FAILED_SERVER_ERROR", "troupe restarted before this attempt's command started", PlatformExitCode.SERVER_ERROR);
  });
}

/** Ends whatever is left of an attempt recorded as ended (the run finishes only once it is gone). */
async function stopLeftover(site: ResumeSite, g: number, t: number, recorded: ResumedGroup): Promise<void> {
  const task = site.state.tasks[g]![t]!;
  if (await site.launcher.reattach(g, t, recorded.handle ?? undefined)) {
    const attempt = task.attempt;
    if (attempt) await stopAttempt(attempt, 0);
  }
}
