/**
 * The runtime port's conformance suite (port.conformance.ts) against the host
 * runtime through LocalPool, as root with network namespaces, with each
 * sandbox builder: troupe-spawner's own and bubblewrap.
 */
import { describe } from "vitest";
import { onPath } from "../../src/util/executables.js";
import { bridgesOfRun, IS_ROOT } from "../run/helpers.js";
import { BACKENDS } from "./backends.js";
import { describeConformance } from "./port.conformance.js";

describe.runIf(IS_ROOT)("host runtime (as root)", () => {
  describeConformance({
    name: "host, troupe-spawner's sandboxes",
    backend: "host-spawner",
    make: BACKENDS["host-spawner"],
    image: "alpine:3.18",
    missingBinary: "exit-127",
    leftovers: bridgesOfRun,
  });
});

describe.runIf(IS_ROOT && onPath("bwrap"))("host runtime (as root, bubblewrap)", () => {
  describeConformance({
    name: "host, bubblewrap's sandboxes",
    backend: "host-bwrap",
    make: BACKENDS["host-bwrap"],
    image: "alpine:3.18",
    missingBinary: "exit-127",
    leftovers: bridgesOfRun,
  });
});
