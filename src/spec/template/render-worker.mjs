// Renders one Jinja template per message, off the main thread, so that the
// caller can bound its time (terminate) and memory (resourceLimits).
//
// @huggingface/jinja interprets templates with values of its own: a template
// cannot reach JavaScript objects, prototypes or the file system. This file is
// plain JavaScript so the worker starts the same way from src/ (tests) and
// dist/ (the built CLI).
//
// Jinja's default undefined renders as an empty string; troupe wants strict
// undefined (as OSMO): a missing variable is an error, except where a template
// asks about it (`x is defined`, `x | default(...)`). The interpreter is
// patched here, in the worker's own copy of the library, to do that.
import { parentPort } from "node:worker_threads";
import { Environment, Interpreter, Template } from "@huggingface/jinja";

class UndefinedVariableError extends Error {
  constructor(name) {
    super(`undefined variable '${name}'`);
    this.variable = name;
  }
}

const proto = Interpreter.prototype;
const originalIdentifier = proto.evaluateIdentifier;
const originalTest = proto.evaluateTestExpression;
const originalFilter = proto.evaluateFilterExpression;
let lenientDepth = 0;

function isDeclared(environment, name) {
  try {
    environment.resolve(name);
    return true;
  } catch {
    return false;
  }
}

proto.evaluateIdentifier = function (node, environment) {
  const value = originalIdentifier.call(this, node, environment);
  if (lenientDepth === 0 && value.type === "UndefinedValue" && !isDeclared(environment, node.value)) {
    throw new UndefinedVariableError(node.value);
  }
  return value;
};

function lenient(original) {
  return function (node, environment) {
    lenientDepth++;
    try {
      return original.call(this, node, environment);
    } finally {
      lenientDepth--;
    }
  };
}

const lenientTest = lenient(originalTest);
proto.evaluateTestExpression = function (node, environment) {
  const test = node.test?.value;
  return test === "defined" || test === "undefined"
    ? lenientTest.call(this, node, environment)
    : originalTest.call(this, node, environment);
};

const lenientFilter = lenient(originalFilter);

// Functions (`range`, `x.upper`) must not render: their text would be the
// library's JavaScript source. The class is not exported; take it from a value.
class FunctionRenderError extends Error {}
const probe = new Environment();
probe.set("probe", () => undefined);
const FunctionValue = probe.lookupVariable("probe").constructor;
FunctionValue.prototype.toString = function () {
  throw new FunctionRenderError("a function cannot be rendered as text (did you forget to call it?)");
};
proto.evaluateFilterExpression = function (node, environment) {
  const filter = node.filter?.type === "Identifier" ? node.filter.value : node.filter?.callee?.value;
  if (filter === "d") return lenientFilter.call(this, renamedFilter(node, "default"), environment);
  return filter === "default" ? lenientFilter.call(this, node, environment) : originalFilter.call(this, node, environment);
};

/** `d` is Jinja's alias of `default`, which the library lacks: rename it in a copy of the node. */
function renamedFilter(node, name) {
  const clone = (object, changes) => Object.assign(Object.create(Object.getPrototypeOf(object)), object, changes);
  const filter =
    node.filter.type === "Identifier"
      ? clone(node.filter, { value: name })
      : clone(node.filter, { callee: clone(node.filter.callee, { value: name }) });
  return clone(node, { filter });
}

/** The interpreter recurses on nesting: a template nested deeper than its stack allows is one the user can fix. */
const tooDeep = (error) => error instanceof RangeError && /call stack/i.test(error.message);
const TOO_DEEP = { ok: false, kind: "too_deep", message: "blocks or expressions nested deeper than the interpreter's stack allows" };

function render({ template, variables, maxOutputChars }) {
  let parsed;
  try {
    parsed = new Template(template);
  } catch (error) {
    if (tooDeep(error)) return TOO_DEEP;
    return { ok: false, kind: "syntax", message: String(error?.message ?? error), internal: error instanceof TypeError };
  }
  try {
    const output = parsed.render(variables);
    if (output.length > maxOutputChars) return { ok: false, kind: "too_large", message: `output of ${output.length} characters` };
    return { ok: true, output };
  } catch (error) {
    if (error instanceof UndefinedVariableError) return { ok: false, kind: "undefined", message: error.message, variable: error.variable };
    if (tooDeep(error)) return TOO_DEEP;
    if (error instanceof RangeError) return { ok: false, kind: "too_large", message: String(error.message) };
    return { ok: false, kind: "runtime", message: String(error?.message ?? error) };
  }
}

// The pool's protocol (util/worker-pool.ts): say when the render starts (its
// time bound counts from then), then answer.
parentPort.on("message", ({ id, job }) => {
  parentPort.postMessage({ id, started: Date.now() });
  parentPort.postMessage({ id, result: render(job) });
});
