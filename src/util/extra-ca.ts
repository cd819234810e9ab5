/**
 * NODE_EXTRA_CA_CERTS, made to count at troupe's first TLS connection
 * instead of at Node.js's start.
 *
 * Why: with the variable set, Node.js 20 parses its own root certificates and
 * the file's at every start, before any code runs: about 30 ms of CPU for a
 * system bundle of 140 certificates, a third of `troupe --version`, paid by
 * every command whether it connects anywhere or not (running a workflow on
 * this machine or a Slurm cluster, validating, planning do not). bin/troupe's
 * shell lines move the variable aside for Node.js's start, and its first
 * JavaScript puts it back in the environment (what troupe starts sees it as it
 * was set) and leaves the file's name here (`DEFERRED`).
 *
 * `trustExtraCaCerts()` is then called before each kind of TLS client troupe
 * makes (the S3 SDK, the Kubernetes client, the CLI's requests to a server):
 * from then on a TLS context made with no `ca` of its own trusts Node's roots
 * and the file's certificates, which is what NODE_EXTRA_CA_CERTS means in
 * Node.js (a context given its own `ca` trusts only that, in both). The
 * certificates are parsed once: contexts that ask nothing else of their own
 * share one (made per connection, the parse would cost 20-40 ms each).
 * Started another way (`node bin/troupe`, or without the variable), Node.js
 * has read the file itself and this does nothing.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { SecureContext, SecureContextOptions } from "node:tls";

/** Where bin/troupe leaves the file's name (a global: the launcher is not part of the bundle). */
export const DEFERRED = Symbol.for("troupe.deferredExtraCaCerts");

/** What a context is made of: an option among these makes a context of its own (Node.js 20's createSecureContext). */
const CONTEXT_OPTIONS = [
  "ca",
  "cert",
  "key",
  "pfx",
  "passphrase",
  "crl",
  "ciphers",
  "sigalgs",
  "ecdhCurve",
  "dhparam",
  "honorCipherOrder",
  "minVersion",
  "maxVersion",
  "secureProtocol",
  "secureOptions",
  "sessionIdContext",
  "sessionTimeout",
  "ticketKeys",
  "clientCertEngine",
  "privateKeyEngine",
  "privateKeyIdentifier",
  "allowPartialTrustChain",
] as const;

let done = false;

export function trustExtraCaCerts(): void {
  const file = (globalThis as Record<symbol, unknown>)[DEFERRED];
  if (done || typeof file !== "string") return;
  done = true;
  let pem: string;
  try {
    pem = readFileSync(file, "latin1");
  } catch (error) {
    // Node.js's own words and behaviour for a file it cannot read: a warning, and its roots alone.
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(error as NodeJS.ErrnoException).message}`);
    return;
  }
  // require, not import(): bin/troupe runs a bundle compiled with a code cache, which has no dynamic import.
  const tls = createRequire(import.meta.url)("node:tls") as typeof import("node:tls");
  const make = tls.createSecureContext;
  const withExtra = (options?: SecureContextOptions): SecureContext => {
    const context = make(options);
    // The native context's own: it adds the PEM's certificates to the trust the context started from (Node's roots).
    (context as unknown as { context: { addCACert(pem: string): void } }).context.addCACert(pem);
    return context;
  };
  let shared: SecureContext | undefined;
  // tls.connect (and so https, and fetch) makes its context through this property when it is given none.
  tls.createSecureContext = (options?: SecureContextOptions) => {
    if (options?.ca !== undefined) return make(options);
    if (CONTEXT_OPTIONS.some((name) => options?.[name] !== undefined)) return withExtra(options);
    return (shared ??= withExtra());
  };
}
