/**
 * The user host sandboxes' tasks run as, on this machine or a Slurm node
 * (`--task-user`, a pool's `task_user`): `UID`,
 * `UID:GID`, or a user name of this machine's /etc/passwd (its own group).
 * Numbers reach the sandbox: nothing is looked up inside it.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { TaskUser } from "../../runtime/index.js";

/** The user `text` names, or what is wrong with it (said after the flag or field and the value). */
export function readTaskUser(text: string): TaskUser | string {
  const numeric = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(text);
  if (numeric) {
    const uid = Number(numeric[1]);
    const gid = numeric[2] === undefined ? uid : Number(numeric[2]);
    if (uid > 0xfffffffe || gid > 0xfffffffe) return "ids go up to 4294967294";
    if (uid === 0) return "tasks never run as root by default; allow privileged tasks instead";
    return { uid, gid };
  }
  if (!/^[a-z_][a-z0-9_-]*\$?$/i.test(text)) return "expected UID, UID:GID or a user name";
  const entry = passwdEntries().find((fields) => fields[0] === text);
  if (!entry) return "no such user in /etc/passwd";
  return readTaskUser(`${entry[2]}:${entry[3]}`);
}

/** `task_user`, one option of the runtimes that build host sandboxes (the host's, Slurm's): a user readTaskUser reads. */
export const taskUserOption = z
  .string()
  .superRefine((text, context) => {
    const user = readTaskUser(text);
    if (typeof user === "string") context.addIssue({ code: "custom", message: user });
  })
  .optional();

function passwdEntries(): string[][] {
  try {
    return readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .map((line) => line.split(":"));
  } catch {
    // No /etc/passwd (a minimal container): only numeric users can be named.
    return [];
  }
}
