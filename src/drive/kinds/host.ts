/** The host runtime's entry: this machine's processes, each in a sandbox of its own. */
import { z } from "zod";
import { HostRuntime, LocalPool, type TaskUser } from "../../runtime/index.js";
import { defineRuntimeKind } from "../kind.js";
import { readTaskUser, taskUserOption } from "./task-user.js";

const HostOptions = z.object({
  isolation: z.enum(["netns", "none"]).optional(),
  task_user: taskUserOption,
});

export const hostKind = defineRuntimeKind({
  name: "host",
  summary: "this machine's processes, each in a sandbox",
  options: HostOptions,
  impliedBy: ["isolation"],
  automatic: true,
  // It runs wherever troupe does: what it cannot do here (no bubblewrap, no root) it says in its notices.
  check: () => Promise.resolve({ ok: true, ready: undefined }),
  create(options, _ready, { home, images }) {
    const taskUser = options.task_user === undefined ? undefined : (readTaskUser(options.task_user) as TaskUser);
    const make = () => {
      const runtime = new HostRuntime({ isolation: options.isolation ?? "netns", home, taskUser });
      runtime.noteImages(images);
      return runtime;
    };
    return new LocalPool("host", make);
  },
});
