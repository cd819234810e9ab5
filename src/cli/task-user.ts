/**
 * The user host tasks run as (`--task-user`, a pool's `task_user`): `UID`,
 * `UID:GID`, or a user name of this machine's /etc/passwd (its own group).
 * Numbers reach the sandbox: nothing is looked up inside it.
 */
import { readFileSync } from "node:fs";
import { UsageError } from "../errors/index.js";
import type { TaskUser } from "../runtime/index.js";

export function parseTaskUser(text: string, where = "--task-user"): TaskUser {
  const numeric = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(text);
  if (numeric) {
    const uid = Number(numeric[1]);
    const gid = numeric[2] === undefined ? uid : Number(numeric[2]);
    if (uid > 0xfffffffe || gid > 0xfffffffe) throw new UsageError(`${where} ${text}: ids go up to 4294967294`);
    if (uid === 0) throw new UsageError(`${where} ${text}: tasks never run as root by default; allow privileged tasks instead`);
    return { uid, gid };
  }
  if (!/^[a-z_][a-z0-9_-]*\$?$/i.test(text)) throw new UsageError(`${where} ${text}: expected UID, UID:GID or a user name`);
  const entry = passwdEntries().find((fields) => fields[0] === text);
  if (!entry) throw new UsageError(`${where} ${text}: no such user in /etc/passwd`);
  return parseTaskUser(`${entry[2]}:${entry[3]}`, where);
}

function passwdEntries(): string[][] {
  try {
    return readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .map((line) => line.split(":"));
  } catch {
    // No /etc/passwd: no names to look up (a UID is still taken).
    return [];
  }
}
