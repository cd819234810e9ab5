/**
 * The Kubernetes pool when the API server is loaded or failing: a proxy on loopback (fault-proxy.ts) in front of
 * the test cluster's real API server answers chosen requests with 429 (Retry-After), 503, or ends a watch with
 * 410 Expired, which the real server cannot be made to do at will. Single calls are asked again (429, 5xx); a
 * watch ended by 410 is followed by a new list, and the group's events still come; a 5xx that lasts ends the
 * attempt saying so.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunSession } from "../../src/port/index.js";
import { KubernetesPool } from "../../src/runtime/kubernetes/index.js";
import { FaultProxy } from "./fault-proxy.js";
import { createNamespace, deleteNamespace, givenCluster, kubeConfigFrom, uniqueNamespace } from "./k8s-cluster.js";
import { Events, launchOf } from "./pool-events.js";

const attempt = givenCluster();
const home = mkdtempSync(join(tmpdir(), "troupe-k8s-faults-"));
const namespace = uniqueNamespace("troupe-faults");
let admin: KubeConfig;
let proxy: FaultProxy;
const sessions: RunSession[] = [];

describe.skipIf(!attempt.cluster)(
  `the Kubernetes pool against a failing API server ${attempt.reason ? `(skipped: ${attempt.reason})` : ""}`,
  () => {
    beforeAll(async () => {
      admin = kubeConfigFrom(attempt.cluster!.kubeconfig);
      await createNamespace(admin, namespace);
      proxy = new FaultProxy(admin);
      await proxy.start();
    });
    afterAll(async () => {
      await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
      await proxy?.stop();
      if (admin) await deleteNamespace(admin, namespace);
      rmSync(home, { recursive: true, force: true });
    }, 90_000);

    it("asks again after 429 and 503, and lists again after a watch ended by 410, and the group runs", async () => {
      const pods = /^\/api\/v1\/namespaces\/[^/]+\/pods$/;
      const tooMany = { method: "POST", path: pods, answer: 429, times: 2 } as const;
      const unavailable = { method: "POST", path: /\/secrets$/, answer: 503, times: 1 } as const;
      const gone = { method: "GET", path: pods, watch: true, answer: 410, times: 1 } as const;
      proxy.faults.push(tooMany, unavailable, gone);
      const pool = new KubernetesPool({
        config: proxy.config(),
        home,
        namespace,
        podAnnotations: { "troupe.test/run-for": "500ms", "troupe.test/exit-code": "2" },
      });
      const s = await pool.openSession({ runId: "run-faults", dataDir: home });
      sessions.push(s);
      const events = new Events();
      const group = s.openGroup({ name: "g", members: ["a"] }, events);
      group.place([{ key: "g/a/0", taskName: "a", retryId: 0, image: "alpine" }]);
      await events.until(() => events.placements.size === 1);
      group.prepare(launchOf("g/a/0", events.placements));
      await events.until(() => events.readies.size === 1);
      await group.release(["g/a/0"]);
      await events.until(() => events.exits.size === 1);
      expect(events.exits.get("g/a/0")).toEqual({ kind: "exited", code: 2 });
      expect(proxy.hits.get(tooMany)).toBe(2);
      expect(proxy.hits.get(unavailable)).toBe(1);
      expect(proxy.hits.get(gone)).toBe(1);
      // After the 410: a new list (no watch), then a watch again.
      const lists = proxy.seen.filter((line) => /^GET \/api\/v1\/namespaces\/[^/]+\/pods\?/.test(line) && !line.includes("watch=true"));
      expect(lists.length).toBeGreaterThanOrEqual(2);
    }, 40_000);

    it("ends the attempt saying so when the API server keeps answering 503", async () => {
      const always = { method: "POST", path: /\/pods$/, answer: 503, times: 100 } as const;
      proxy.faults.push(always);
      const pool = new KubernetesPool({ config: proxy.config(), home, namespace });
      const s = await pool.openSession({ runId: "run-down", dataDir: home });
      sessions.push(s);
      const events = new Events();
      s.openGroup({ name: "g", members: ["a"] }, events).place([{ key: "g/a/0", taskName: "a", retryId: 0, image: "alpine" }]);
      await events.until(() => events.exits.size === 1, 30_000);
      expect(events.exits.get("g/a/0")).toEqual({ kind: "start-failed", message: "the API server refused the pod: 503: injected 503" });
      expect(proxy.hits.get(always)).toBe(6);
      proxy.faults.splice(proxy.faults.indexOf(always), 1);
    }, 40_000);
  },
);
