/** The events of a group's members as the engine waits for them: per attempt, each settled once. */
import type { GroupListener, MemberOutcome, Placement } from "../port/index.js";

/** One attempt's events, each settled once. */
export class AttemptEvents {
  readonly placed: Promise<Placement | undefined>;
  readonly ready: Promise<boolean>;
  readonly exited: Promise<MemberOutcome>;
  wasReady = false;
  /** Its end is known (told by the runtime, or decided by the engine). */
  ended = false;
  /** The cluster said why it has not placed the attempt yet (GroupListener.unplaced). */
  onUnplaced?: (reason: string) => void;
  /**
   * Told at once, as the runtime reports the attempt ready: an attempt whose command may already run
   * (PrepareOptions.releaseWhenReady) is recorded RUNNING before any end of it can be seen.
   */
  onReady?: () => void;
  private settlePlaced!: (placement: Placement | undefined) => void;
  private settleReady!: (ready: boolean) => void;
  private settleExited!: (outcome: MemberOutcome) => void;

  constructor() {
    this.placed = new Promise((resolve) => (this.settlePlaced = resolve));
    this.ready = new Promise((resolve) => (this.settleReady = resolve));
    this.exited = new Promise((resolve) => (this.settleExited = resolve));
  }

  place(placement: Placement): void {
    this.settlePlaced(placement);
  }

  readied(): void {
    if (this.wasReady) return;
    this.wasReady = true;
    this.onReady?.();
    this.settleReady(true);
  }

  end(outcome: MemberOutcome): void {
    this.ended = true;
    this.settlePlaced(undefined);
    this.settleReady(false);
    this.settleExited(outcome);
  }
}

/** The listener a group's handle reports to: events by attempt key, for attempts the engine expects (others ignored). */
export class GroupChannel implements GroupListener {
  private readonly attempts = new Map<string, AttemptEvents>();

  expect(key: string): AttemptEvents {
    let events = this.attempts.get(key);
    if (!events) this.attempts.set(key, (events = new AttemptEvents()));
    return events;
  }

  placed(key: string, placement: Placement): void {
    this.attempts.get(key)?.place(placement);
  }

  unplaced(key: string, reason: string): void {
    this.attempts.get(key)?.onUnplaced?.(reason);
  }

  ready(key: string): void {
    this.attempts.get(key)?.readied();
  }

  exited(key: string, outcome: MemberOutcome): void {
    const events = this.attempts.get(key);
    if (!events) return;
    this.attempts.delete(key);
    events.end(outcome);
  }
}
