/**
 * Tags (OSMO's `workflow tag`): words added to and removed from a workflow
 * after it was submitted, listed with it and filtered on (`GET /api/workflow?tag=`).
 * Only its submitter or an admin changes a workflow's tags. OSMO takes only the
 * tags its admins configured; troupe takes any well-formed tag, and lists
 * those in use.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { RunStore, TokenOwner } from "../store/index.js";
import { RESPONSES } from "./api-responses.js";
import { IdParams, routeSchemas, TagBody } from "./api-schemas.js";
import { noWorkflow } from "./error-reply.js";

export interface TagRouteAccess {
  /** The workflow an id (or a prefix of one) names among those `owner` may read. */
  resolve(idOrPrefix: string, owner: TokenOwner): string | undefined;
  /** Refuses (throws) `owner` changing workflow `id` when it is not theirs to change. */
  checkTheirs(id: string, owner: TokenOwner, verb: string): void;
  /** The only user whose workflows `owner` may read (private workflows), or undefined for everyone's. */
  readableOf(owner: TokenOwner): string | undefined;
  /** Its tags changed: forget what was kept of its record. */
  changed(id: string): void;
}

export function registerTagRoutes(app: FastifyInstance, store: RunStore, access: TagRouteAccess): void {
  app.post(
    "/api/workflow/:id/tag",
    routeSchemas({ params: IdParams, body: TagBody }, RESPONSES["POST /api/workflow/:id/tag"]),
    async (request: FastifyRequest<{ Params: { id: string }; Body: z.output<typeof TagBody> }>, reply: FastifyReply) => {
      const id = access.resolve(request.params.id, request.owner!);
      if (!id) throw noWorkflow(request.params.id);
      access.checkTheirs(id, request.owner!, "tag");
      const tags = store.setTags(id, request.body.add, request.body.remove);
      access.changed(id);
      return reply.send({ id, tags });
    },
  );
  // Only the tags of workflows the caller may read: private workflows' tags are theirs too.
  app.get("/api/tag", routeSchemas({}, RESPONSES["GET /api/tag"]), async (request) => ({
    tags: store.tagsInUse(access.readableOf(request.owner!)),
  }));
}
