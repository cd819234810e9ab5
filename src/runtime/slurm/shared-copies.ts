/**
 * What a Slurm pool puts on the cluster's shared file system for its nodes, each file named by its contents'
 * hash (NAME-HASH[.EXT]: troupes of other versions keep theirs): the members' helper and troupe-init. Which
 * helper the members' step runs is decided here, once for the pool: troupe-slurm-helper (static C: nothing
 * needed on the nodes, and it starts in a millisecond where Node.js takes a third of a second) for members in
 * troupe's host sandbox, when it was built; else member-helper.mjs with the nodes' `node` (a container member's,
 * whose logic is member-container.mjs's, and a sandbox member's without the C helper: the pool's notice says so).
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { builtHelper } from "../native-helpers.js";

const HELPER_SOURCE = new URL("./member-helper.mjs", import.meta.url);
/** The Node.js helper's modules of its own (secret masking, a container member), copied beside it. */
const MASKER_SOURCE = new URL("./member-masker.mjs", import.meta.url);
const CONTAINER_SOURCE = new URL("./member-container.mjs", import.meta.url);

/** What of the pool's settings decides its members' helper. */
export interface HelperChoice {
  nodeEngine?: "podman";
  /** troupe-slurm-helper (default: the one `npm run build` made, if it could; false: none). */
  nativeHelper?: string | false;
  /** Node.js on the nodes, for the Node.js helper (default: this one's path). */
  nodePath?: string;
}

export class SharedCopies {
  private helper: string[] | undefined;
  private init: string | undefined;

  constructor(
    /** The pool's directory on the shared file system. */
    private readonly base: string,
    private readonly choice: HelperChoice,
  ) {}

  /** Whether the members' step runs troupe-slurm-helper (not the Node.js helper). */
  memberHelperIsNative(): boolean {
    return this.nativeHelper() !== undefined;
  }

  /** The members' helper command on the nodes (the step gives it the members file). */
  memberHelper(): string[] {
    const native = this.nativeHelper();
    return (this.helper ??= native
      ? [this.copy(readFileSync(native), "troupe-slurm-helper", 0o755)]
      : [this.choice.nodePath ?? process.execPath, this.nodeHelperScript()]);
  }

  /** troupe-init, for the nodes' containers. */
  initPath(): string {
    const built = builtHelper("troupe-init");
    if (!built) throw new Error("troupe-init was not built (it needs a C compiler with a static libc: `npm run build`)");
    return (this.init ??= this.copy(readFileSync(built), "troupe-init", 0o755));
  }

  private nativeHelper(): string | undefined {
    if (this.choice.nodeEngine === "podman" || this.choice.nativeHelper === false) return undefined;
    return this.choice.nativeHelper ?? builtHelper("troupe-slurm-helper");
  }

  /** member-helper.mjs, each of its modules importing the others by the names of their copies. */
  private nodeHelperScript(): string {
    const masker = `./${basename(this.copy(readFileSync(MASKER_SOURCE), "member-masker.mjs", 0o644))}`;
    const withMasker = (source: URL) => readFileSync(source, "utf8").replace('"./member-masker.mjs"', JSON.stringify(masker));
    const container = `./${basename(this.copy(Buffer.from(withMasker(CONTAINER_SOURCE)), "member-container.mjs", 0o644))}`;
    const helper = withMasker(HELPER_SOURCE).replace('"./member-container.mjs"', JSON.stringify(container));
    return this.copy(Buffer.from(helper), "member-helper.mjs", 0o644);
  }

  /** `bytes` in the pool's directory as NAME-HASH[.EXT], written whole (renamed into place) if not there yet. */
  private copy(bytes: Buffer, name: string, mode: number): string {
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    const path = join(this.base, `${stem}-${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}${ext}`);
    if (!existsSync(path)) {
      mkdirSync(this.base, { recursive: true });
      writeFileSync(`${path}.${process.pid}`, bytes);
      chmodSync(`${path}.${process.pid}`, mode);
      renameSync(`${path}.${process.pid}`, path);
    }
    return path;
  }
}
