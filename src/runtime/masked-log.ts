/**
 * A task attempt's log written by troupe itself, with the secrets of the
 * credentials the task was given masked (util/secret-mask.ts): where a
 * runtime would otherwise let the task's output go straight to its log file
 * (troupe-spawner's file mode, a container's passthrough), a task with
 * secrets has its output come through here instead. The live view is given
 * the same masked bytes.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { SecretMasker } from "../util/secret-mask.js";

export class MaskedLog {
  private readonly masker: SecretMasker;
  private readonly stream: WriteStream;
  private failure: Error | undefined;

  constructor(
    path: string,
    secrets: readonly string[],
    private readonly live?: (chunk: Buffer) => void,
  ) {
    this.masker = new SecretMasker(secrets);
    mkdirSync(dirname(path), { recursive: true });
    // Appending: an attempt restarted in place goes on in the same file.
    this.stream = createWriteStream(path, { flags: "a" });
    this.stream.on("error", (error) => (this.failure ??= error));
  }

  write(chunk: Buffer): void {
    this.emit(this.masker.push(chunk));
  }

  /** Writes what the masker held back; `done` once every byte is on disk (or the log could not be written). */
  end(done: (error?: Error) => void): void {
    this.emit(this.masker.end());
    if (this.failure) {
      done(this.failure);
      return;
    }
    this.stream.end(() => done(this.failure));
  }

  private emit(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.failure) this.stream.write(bytes);
    this.live?.(bytes);
  }
}
