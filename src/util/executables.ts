import { accessSync, constants } from "node:fs";
import { join } from "node:path";

/** Whether an executable of that name is on PATH (cheap: no process started). */
export function onPath(name: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    try {
      accessSync(join(dir || ".", name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
