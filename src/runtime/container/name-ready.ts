/**
 * Whether the engine's name server (podman's aardvark-dns, on the network's
 * gateway) answers a member's name yet: it learns a container's names when
 * the container joins the network and reloads them on a signal, after the
 * container may already be up. A member is ready only once its name resolves,
 * so that no member of a group starts before its peers' names do.
 */
import { randomBytes } from "node:crypto";
import { query, readAnswer } from "../dns-wire.js";
import { askUdp } from "../name-server.js";

const ATTEMPT_MS = 250;

/** Resolves once `server` answers `name` with `address`; rejects after `timeoutMs` saying what it answered last. */
export async function nameResolves(server: string, name: string, address: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  for (let pause = 5; Date.now() < deadline; pause = Math.min(pause * 2, 100)) {
    const answer = await ask(server, name).catch((error: Error) => error.message);
    if (typeof answer !== "string" && answer.addresses.includes(address)) return;
    last =
      typeof answer === "string"
        ? answer
        : answer.addresses.length > 0
          ? `it answered ${answer.addresses.join(", ")}`
          : `it answered code ${answer.rcode}`;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  throw new Error(`the engine's name server at ${server} did not resolve ${name} to ${address} within ${timeoutMs / 1000} s (${last})`);
}

async function ask(server: string, name: string): Promise<{ rcode: number; addresses: string[] }> {
  const id = randomBytes(2).readUInt16BE(0);
  const answer = readAnswer(await askUdp({ address: server, port: 53 }, query(id, name), ATTEMPT_MS));
  if (!answer) throw new Error("an answer that is no DNS message");
  return answer;
}
