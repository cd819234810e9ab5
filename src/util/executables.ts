import { accessSync, constants } from "node:fs";
import { join } from "node:path";

/** Whether an executable of that name is on PATH (cheap: no process started). */
export function onPath(name: string): boolean {
  return whichPath(name) !== undefined;
}

/** The absolute path of the executable of that name on this process's PATH (not a task's). */
export function whichPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir.startsWith("/")) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not there
    }
  }
  return undefined;
}
