/**
 * GET /api/workflow: workflows, filtered as OSMO's list is. As there, a
 * caller sees their own unless they name users (`user`) or ask for everyone's
 * (`all_users`); a server with private workflows shows a user their own only.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { RunStore, TokenOwner } from "../store/index.js";
import { RESPONSES } from "./api-responses.js";
import { ListQuery, routeSchemas } from "./api-schemas.js";

/** `readableOf(owner)`: the only user whose workflows `owner` may read, or undefined for everyone's (app.ts). */
export function registerListRoute(app: FastifyInstance, store: RunStore, readableOf: (owner: TokenOwner) => string | undefined): void {
  app.get(
    "/api/workflow",
    routeSchemas({ querystring: ListQuery }, RESPONSES["GET /api/workflow"]),
    async (request: FastifyRequest<{ Querystring: z.output<typeof ListQuery> }>) => {
      const q = request.query;
      const owner = request.owner!;
      const onlyOwn = readableOf(owner);
      let users: string[] | undefined = q.user.length > 0 ? q.user : q.all_users ? undefined : [owner.name];
      // Private workflows: a user lists their own only (asking for another user's finds none).
      if (onlyOwn !== undefined) users = (users ?? [onlyOwn]).filter((user) => user === onlyOwn);
      return {
        workflows: store.listRuns({
          status: q.status,
          name: q.name,
          pool: q.pool,
          users,
          priority: q.priority,
          labels: q.label,
          noLabels: q.no_label,
          tags: q.tag.length > 0 ? q.tag : undefined,
          since: q.since ? Date.parse(q.since) : undefined,
          until: q.until ? Date.parse(q.until) : undefined,
          order: q.order,
          limit: q.limit,
          offset: q.offset,
        }),
      };
    },
  );
}
