/**
 * A run's images, as the pull policy says: whether each is present is asked
 * as soon as the workflow is known (noteImages), and each is made ready
 * (checked, pulled when missing or always) once per run, whoever asks first:
 * the engine, for every image as the run starts (engine/image-check.ts), or
 * the first task of the image. Pulls still going when the run ends are given
 * up.
 */
import type { RegistryAuthority } from "../../port/index.js";
import { TaskStartError } from "../types.js";
import { imageRefusal, type ContainerBackend } from "./backend.js";

export type PullPolicy = "missing" | "always" | "never";

const PULL_TIMEOUT_MS = 300_000;

export class RunImages {
  private readonly ready = new Map<string, Promise<void>>();
  /** Whether images are present, asked early for the images noted. */
  private readonly present = new Map<string, Promise<boolean>>();
  private readonly ended = new AbortController();
  /** The login each image's pull uses (the run owner's REGISTRY credentials), once the run is open. */
  authority: RegistryAuthority | undefined;

  constructor(
    private readonly backend: ContainerBackend,
    private readonly policy: PullPolicy,
  ) {}

  /** The workflow's images: whether each is present is asked now, alongside the run's start and its first network. */
  note(images: Iterable<string>): void {
    if (this.policy === "always") return;
    for (const image of images) {
      if (this.present.has(image) || imageRefusal(image) !== undefined) continue;
      const present = this.backend.hasImage(image);
      present.catch(() => undefined); // awaited, and reported, by the tasks of the image
      this.present.set(image, present);
    }
  }

  /** Once per image and run, as the pull policy says; rejects with the TaskStartError its tasks fail with (FAILED_IMAGE_PULL). */
  ensure(image: string): Promise<void> {
    const refusal = imageRefusal(image);
    if (refusal !== undefined) return Promise.reject(new TaskStartError(`cannot run the image: ${refusal}`, "FAILED_START_ERROR"));
    let ready = this.ready.get(image);
    if (!ready) {
      ready = this.fetch(image);
      ready.catch(() => undefined); // awaited, and reported, by each caller
      this.ready.set(image, ready);
    }
    return ready;
  }

  /** The run has ended: pulls still going are given up (their images were needed by no task that ran). */
  close(): void {
    this.ended.abort();
  }

  private async fetch(image: string): Promise<void> {
    try {
      if (this.policy !== "always" && (await (this.present.get(image) ?? this.backend.hasImage(image)))) return;
      if (this.policy === "never") throw new Error(`the image ${image} is not present locally and --pull is never`);
      if (this.ended.signal.aborted) throw new Error("the run ended before it was pulled");
      await withTimeout(
        this.backend.pull(image, this.ended.signal, this.authority?.(image)),
        PULL_TIMEOUT_MS,
        `pulling ${image} took longer than ${PULL_TIMEOUT_MS / 1000} s`,
      );
    } catch (error) {
      throw new TaskStartError(`cannot pull the image ${image}: ${(error as Error).message}`, "FAILED_IMAGE_PULL");
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
