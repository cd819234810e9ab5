// Renders one Jinja template per message, off the main thread, so that the
// caller can bound its time (terminate) and memory (resourceLimits).
//
// @huggingface/jinja interprets templates with values of its own: a template
// cannot reach JavaScript objects, prototypes or the file system. This file is
// plain JavaScript so the worker starts the same way from src/ (tests) and
// dist/ (the built CLI).
//
// Jinja's default undefined renders as an empty string; troupe wants strict
// undefined (as OSMO's StrictUndefined): a missing variable or attribute
// (`cfg.missing`, `list[9]`) is an error, except where a template asks about
// it (`x is defined`, `x | default(...)`). And as in OSMO's sandboxed Jinja,
// no attribute whose name starts with `_` may be read (`''.__class__`). The
// interpreter is patched here, in the worker's own copy of the library.
import { parentPort } from "node:worker_threads";
import { Environment, Interpreter, Template } from "@huggingface/jinja";

class UndefinedVariableError extends Error {
  constructor(name) {
    super(`undefined variable '${name}'`);
    this.variable = name;
  }
}

/** `cfg.missing`: an attribute or item the value does not have. */
class UndefinedAttributeError extends Error {
  constructor(object, attribute, item) {
    super(item ? `\`${object}\` has no item ${attribute}` : `\`${object}\` has no attribute \`${attribute}\``);
    this.object = object;
    this.attribute = attribute;
  }
}

/** `''.__class__`: what Jinja's sandbox refuses (names starting with `_`). */
class UnsafeAttributeError extends Error {
  constructor(attribute) {
    super(`access to the attribute '${attribute}' is not allowed: templates are sandboxed`);
    this.attribute = attribute;
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
    // resolve throws for a name no scope declares: the answer asked for.
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

const originalMember = proto.evaluateMemberExpression;
proto.evaluateMemberExpression = function (expr, environment) {
  const name = expr.computed ? undefined : expr.property?.value;
  if (typeof name === "string" && name.startsWith("_")) throw new UnsafeAttributeError(name);
  if (expr.computed && expr.property?.type !== "SliceExpression") {
    const key = this.evaluate(expr.property, environment);
    if (key.type === "StringValue" && key.value.startsWith("_")) throw new UnsafeAttributeError(key.value);
  }
  const value = originalMember.call(this, expr, environment);
  if (lenientDepth === 0 && value.type === "UndefinedValue") {
    throw new UndefinedAttributeError(describeNode(expr.object), attributeText(expr), expr.computed);
  }
  return value;
};

/** How the template wrote a value: `cfg`, `cfg.sub`, or what kind of value it is. */
function describeNode(node) {
  if (node.type === "Identifier") return node.value;
  if (node.type === "MemberExpression" && !node.computed) return `${describeNode(node.object)}.${node.property.value}`;
  if (node.type === "MemberExpression" && node.computed) return `${describeNode(node.object)}[...]`;
  return "the value";
}

function attributeText(expr) {
  if (!expr.computed) return String(expr.property.value);
  const key = expr.property;
  if (key.type === "StringLiteral") return JSON.stringify(key.value);
  return key.type === "IntegerLiteral" ? String(key.value) : "[...]";
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

/**
 * The variable names a template mentions anywhere (taken branch or not): what
 * `--set` values can be for. Attribute, filter, test and keyword names are not
 * variables. Walked without recursion: a deep template must not overflow here.
 */
function variableNames(program) {
  const names = new Set();
  const stack = [program];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
      continue;
    }
    if (node instanceof Map) {
      for (const [key, value] of node) stack.push(key, value);
      continue;
    }
    if (node.type === "Identifier") {
      names.add(node.value);
      continue;
    }
    for (const [key, value] of Object.entries(node)) {
      if (node.type === "MemberExpression" && key === "property" && !node.computed) continue;
      if (node.type === "TestExpression" && key === "test") continue;
      if (node.type === "KeywordArgumentExpression" && key === "key") continue;
      if ((node.type === "FilterExpression" || node.type === "FilterStatement") && key === "filter") {
        if (value?.type === "CallExpression") stack.push(value.args);
        continue;
      }
      stack.push(value);
    }
  }
  return [...names];
}

function render({ template, variables, maxOutputChars, wantNames }) {
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
    return wantNames ? { ok: true, output, names: variableNames(parsed.parsed) } : { ok: true, output };
  } catch (error) {
    if (error instanceof UndefinedVariableError) return { ok: false, kind: "undefined", message: error.message, variable: error.variable };
    if (error instanceof UndefinedAttributeError) {
      return { ok: false, kind: "undefined_attribute", message: error.message, variable: error.object, attribute: error.attribute };
    }
    if (error instanceof UnsafeAttributeError) return { ok: false, kind: "unsafe", message: error.message, attribute: error.attribute };
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
