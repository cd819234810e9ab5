/**
 * Names the template interpreter defines itself (`range`, `namespace`, `true`,
 * ...): a variable of the same name cannot be declared, and the interpreter
 * says only "Variable already declared". Asked of the library itself, so the
 * list cannot drift from the version in use.
 */
import { Template } from "@huggingface/jinja";

const EMPTY = new Template("");
const CONSTANTS = new Set(["true", "false", "none", "True", "False", "None"]);

/** Why `name` cannot be a template variable, or undefined when it can. */
export function builtinClash(name: string): string | undefined {
  try {
    EMPTY.render({ [name]: 0 });
    return undefined;
  } catch (error) {
    if (!/already declared/i.test(String((error as Error)?.message))) return undefined;
    const what = CONSTANTS.has(name) ? `the constant \`${name}\`` : `the function \`${name}()\``;
    return `\`${name}\` is a Jinja built-in (${what}), so it cannot be a variable`;
  }
}
