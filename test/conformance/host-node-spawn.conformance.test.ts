/**
 * The runtime port's conformance suite against the host runtime where
 * troupe-spawner was not built (TROUPE_SPAWNER=node: bubblewrap started by
 * Node's spawn), as root: its members cannot restart in place and its tasks
 * do not outlive troupe, so those cases skip themselves, saying why. A file
 * of its own: the variable holds for the whole process.
 */
import { describe } from "vitest";
import { onPath } from "../../src/util/executables.js";
import { bridgesOfRun, IS_ROOT } from "../run/helpers.js";
import { BACKENDS } from "./backends.js";
import { describeConformance } from "./port.conformance.js";

describe.runIf(IS_ROOT && onPath("bwrap"))("host runtime (as root, bubblewrap through Node's spawn)", () => {
  describeConformance({
    name: "host, bubblewrap through Node's spawn",
    backend: "host-bwrap-node",
    make: BACKENDS["host-bwrap-node"],
    image: "alpine:3.18",
    missingBinary: "exit-127",
    leftovers: bridgesOfRun,
  });
});
