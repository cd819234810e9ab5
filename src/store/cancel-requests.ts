/**
 * A cancel asked of a run by another process (`troupe cancel RUN` in another
 * terminal): written on the run's row, read by the process driving the run,
 * which watches for it (cli/run-action.ts). Asking again with `force` after a
 * first request makes it a forced one.
 */
import type Database from "better-sqlite3";

export interface CancelRequest {
  /** Stop the tasks at once, without the grace period. */
  force: boolean;
  /** Why, as the run's transitions will say. */
  reason: string;
  /** When it was asked (epoch ms). */
  time: number;
}

export class CancelRequests {
  private readonly write;
  private readonly read;

  constructor(db: Database.Database) {
    // Asked once with force, it stays forced.
    this.write = db.prepare<[{ request: string; id: string }]>(
      `UPDATE runs SET cancel_request = CASE
         WHEN json_extract(cancel_request, '$.force') = 1 THEN json_set(@request, '$.force', json('true'))
         ELSE @request END
       WHERE id = @id`,
    );
    this.read = db.prepare<[string], string | null>(`SELECT cancel_request FROM runs WHERE id = ?`).pluck();
  }

  request(runId: string, request: CancelRequest): void {
    this.write.run({ request: JSON.stringify(request), id: runId });
  }

  /** The request made of run `runId`, if any. */
  get(runId: string): CancelRequest | undefined {
    const json = this.read.get(runId);
    return json ? (JSON.parse(json) as CancelRequest) : undefined;
  }
}
