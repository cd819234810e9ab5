/**
 * `troupe credential set|list|delete`, as OSMO's `osmo credential`: secrets
 * for workflows (REGISTRY for image pulls, DATA for `url:` inputs and
 * outputs, GENERIC for tasks), kept on the server the CLI is pointed at (the
 * token's user's own) or under TROUPE_HOME in troupe.db (credential-target.ts),
 * their payloads encrypted with a key kept outside the database
 * (credential.key, mode 0600, or where TROUPE_CREDENTIAL_KEY_FILE says).
 * Values are never printed back.
 */
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { checkCredentialName, checkPayload, parseCredentialType } from "../data/index.js";
import { NotFoundError, UsageError } from "../errors/index.js";
import type { CredentialSummary } from "../store/index.js";
import { credentialTarget } from "./credential-target.js";
import { alignedTable } from "./table.js";
import { action, colorsFor } from "./shared.js";

const KEY_NOTE = `
Where: on the server the CLI is pointed at (\`troupe login\`, or TROUPE_SERVER and TROUPE_TOKEN),
as your own (the token's user's: the server's runs of yours use them, nobody else sees or uses them);
otherwise, or with --local, in this home, for \`troupe run\`.
Payloads are encrypted (AES-256-GCM) with the key in $TROUPE_HOME/credential.key (a server's: in
its --home), made at the first \`set\`, mode 0600, or in the file TROUPE_CREDENTIAL_KEY_FILE names;
keep it: without it the credentials cannot be opened.`;
const LOCAL = "this home's credentials, even when the CLI is pointed at a server";

export function credentialCommand(): Command {
  const command = new Command("credential")
    .description("set, list and delete credentials (registry, data, generic): yours on the server, or this machine's")
    .addHelpText(
      "after",
      `${KEY_NOTE}\n\nExamples:\n  $ troupe credential list\n  $ troupe credential set my-bucket --type data --payload endpoint=s3://my-bucket region=us-east-1 access_key_id=AKIA... access_key=...`,
    );
  command
    .command("set")
    .description("create or replace a credential")
    .argument("<name>", "its name: letters, digits, - and _, starting with a letter")
    .addOption(new Option("--type <type>", "registry, data or generic").default("generic"))
    .option("--payload <key=value...>", "its payload, key=value pairs")
    .option("--payload-file <key=path...>", "payload values read from files (a trailing newline dropped)")
    .option("--local", LOCAL)
    .addHelpText(
      "after",
      `
Payload keys by type (as OSMO's):
  data      endpoint=s3://BUCKET[/PATH] access_key_id=ID access_key=KEY, optional region=R,
            override_url=http://HOST:PORT (an S3-compatible service), addressing_style=path|virtual|auto
  registry  auth=TOKEN (or password=), optional registry=HOST[/PATH] (default Docker Hub) username=USER;
            the container runtime pulls images under registry with this login
  generic   any keys; tasks get them through \`credentials:\`
A \`url:\` input or output uses the data credential whose endpoint names its bucket.
${KEY_NOTE}

Examples:
  $ troupe credential set lab-data --type data --payload endpoint=s3://lab-data region=us-east-1 access_key_id=AKIA123 access_key=abcd...
  $ troupe credential set minio --type data --payload endpoint=s3://scratch access_key_id=admin access_key=... override_url=http://127.0.0.1:9000
  $ troupe credential set ssh --type generic --payload-file id_ed25519=$HOME/.ssh/id_ed25519
  $ troupe credential set lab-data --local --type data --payload endpoint=s3://lab-data access_key_id=AKIA123 access_key=abcd...`,
    )
    .action(
      action(async (name: string, options: { type: string; payload?: string[]; payloadFile?: string[]; local?: boolean }) => {
        checkCredentialName(name);
        const type = parseCredentialType(options.type);
        const payload = readPayload(options.payload ?? [], options.payloadFile ?? []);
        const checked = checkPayload(type, payload);
        await credentialTarget(options.local === true).set(name, type, checked);
        process.stdout.write(`Set ${type} credential ${name}.\n`);
        return 0;
      }),
    );
  command
    .command("list")
    .description("the credentials: names, types, the keys of their payloads and when they were set (never their values)")
    .addOption(new Option("--output <format>", "pretty or json").choices(["pretty", "json"]).default("pretty"))
    .option("--local", LOCAL)
    .addHelpText(
      "after",
      "\nExamples:\n  $ troupe credential list\n  $ troupe credential list --output json\n  $ troupe credential list --local",
    )
    .action(
      action(async (options: { output: string; local?: boolean }) => {
        const list = await credentialTarget(options.local === true).list();
        process.stdout.write(
          options.output === "json" ? JSON.stringify({ credentials: list.map(asJson) }, null, 2) + "\n" : formatList(list),
        );
        return 0;
      }),
    );
  command
    .command("delete")
    .description("delete a credential")
    .argument("<name>", "the credential's name")
    .option("--local", LOCAL)
    .addHelpText("after", "\nExamples:\n  $ troupe credential delete lab-data\n  $ troupe credential delete lab-data --local")
    .action(
      action(async (name: string, options: { local?: boolean }) => {
        checkCredentialName(name);
        if (!(await credentialTarget(options.local === true).delete(name)))
          throw new NotFoundError("E_NO_CREDENTIAL", `there is no credential \`${name}\``, "`troupe credential list` shows them");
        process.stdout.write(`Deleted credential ${name}.\n`);
        return 0;
      }),
    );
  return command;
}

/** `k=v` pairs and `k=PATH` files as one payload; a key given twice, an empty key or value, a missing file are usage errors. */
export function readPayload(pairs: readonly string[], files: readonly string[]): Record<string, string> {
  if (pairs.length + files.length === 0)
    throw new UsageError("a credential needs a payload: --payload key=value ... or --payload-file key=path ...");
  const payload: Record<string, string> = {};
  const add = (item: string, flag: string, value: (raw: string, key: string) => string) => {
    const eq = item.indexOf("=");
    const key = eq < 0 ? "" : item.slice(0, eq);
    const raw = eq < 0 ? "" : item.slice(eq + 1);
    if (!key || !raw)
      throw new UsageError(
        `${flag} \`${eq < 0 ? item : key + "=…"}\`: give key=${flag === "--payload" ? "value" : "path"}, both non-empty`,
      );
    if (Object.hasOwn(payload, key)) throw new UsageError(`the payload key \`${key}\` is given twice`);
    payload[key] = value(raw, key);
  };
  for (const item of pairs) add(item, "--payload", (raw) => raw);
  for (const item of files)
    add(item, "--payload-file", (path, key) => {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (error) {
        throw new UsageError(
          `--payload-file ${key}=${path}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`,
        );
      }
      const value = text.replace(/[\r\n]+$/, "");
      if (!value) throw new UsageError(`--payload-file ${key}=${path}: the file is empty`);
      return value;
    });
  return payload;
}

function asJson(c: CredentialSummary) {
  return {
    name: c.name,
    type: c.type,
    keys: c.keys,
    profile: c.profile,
    created: new Date(c.createdAt).toISOString(),
    updated: new Date(c.updatedAt).toISOString(),
  };
}

function formatList(list: readonly CredentialSummary[]): string {
  if (list.length === 0) return "No credentials. `troupe credential set NAME --type data|registry|generic --payload k=v ...` sets one.\n";
  const c = colorsFor(process.stdout);
  const when = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  const rows = [
    ["NAME", "TYPE", "KEYS", "PROFILE", "CREATED", "UPDATED"],
    ...list.map((x) => [x.name, x.type, x.keys.join(","), x.profile ?? "-", when(x.createdAt), when(x.updatedAt)]),
  ];
  return alignedTable(rows, c) + "\n";
}
