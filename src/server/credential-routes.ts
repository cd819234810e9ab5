/**
 * Credentials on the server (OSMO's `/api/credentials`): each user sets,
 * lists and deletes their own, the token saying who they are; nobody sees,
 * replaces, deletes or uses another's (the store keeps them by owner, and each
 * payload is sealed with the owner bound into it). Payloads are sealed with the
 * server's credential key (a file outside the database) and never sent back:
 * only names, types, keys, a DATA credential's endpoint and dates.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import { checkCredentialName, checkPayload, type CredentialType } from "../data/index.js";
import { NotFoundError } from "../errors/index.js";
import type { CredentialSummary, RunStore } from "../store/index.js";
import { RESPONSES } from "./api-responses.js";
import { CredentialBody, CredentialParams, routeSchemas } from "./api-schemas.js";

type Body = z.output<typeof CredentialBody>;

/** The envelope's one credential: its type and payload. */
function credentialOf(body: Body): { type: CredentialType; payload: Record<string, string> } {
  if (body.registry_credential) return { type: "REGISTRY", payload: body.registry_credential };
  if (body.data_credential) return { type: "DATA", payload: body.data_credential };
  return { type: "GENERIC", payload: body.generic_credential!.credential };
}

/** As the API shows it (api-responses.ts CredentialSchema). */
export function shownCredential(c: CredentialSummary) {
  return {
    cred_name: c.name,
    cred_type: c.type as CredentialType,
    profile: c.profile,
    keys: c.keys,
    created: new Date(c.createdAt).toISOString(),
    updated: new Date(c.updatedAt).toISOString(),
  };
}

function noCredential(name: string): NotFoundError {
  return new NotFoundError("E_NO_CREDENTIAL", `you have no credential \`${name}\``, "`troupe credential list` shows yours");
}

export function registerCredentialRoutes(app: FastifyInstance, store: RunStore): void {
  app.get("/api/credentials", routeSchemas({}, RESPONSES["GET /api/credentials"]), async (request) => ({
    credentials: store.credentialsOf(request.owner!.name).list().map(shownCredential),
  }));
  app.post(
    "/api/credentials/:name",
    routeSchemas({ params: CredentialParams, body: CredentialBody }, RESPONSES["POST /api/credentials/:name"]),
    async (request: FastifyRequest<{ Params: { name: string }; Body: Body }>, reply: FastifyReply) => {
      const name = checkCredentialName(request.params.name);
      const { type, payload } = credentialOf(request.body);
      const checked = checkPayload(type, payload);
      const table = store.credentialsOf(request.owner!.name);
      table.set(name, type, checked, type === "DATA" ? checked.endpoint! : null);
      const set = table.list().find((c) => c.name === name)!;
      request.log.info({ user: request.owner!.name, credential: name, type }, "credential set");
      return reply.send(shownCredential(set));
    },
  );
  app.delete(
    "/api/credentials/:name",
    routeSchemas({ params: CredentialParams }, RESPONSES["DELETE /api/credentials/:name"]),
    async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
      const name = checkCredentialName(request.params.name);
      if (!store.credentialsOf(request.owner!.name).delete(name)) throw noCredential(name);
      request.log.info({ user: request.owner!.name, credential: name }, "credential deleted");
      return reply.send({ cred_name: name, deleted: true });
    },
  );
}
