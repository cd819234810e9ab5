/**
 * Which REGISTRY credential authorises an image's pull, as OSMO decides it
 * (common.py: normalize_registry_scope, image_registry_scope,
 * matching_registry_scopes): scopes are a host (Docker Hub by default, by
 * either name) and an optional path prefix, matched by whole path segments,
 * the most specific first; the engines' forms of the login.
 */
import { describe, expect, it } from "vitest";
import { imageScope, normalizeScope, registryAuthFor, registryLoginFrom } from "../../src/data/index.js";
import { podmanAuthFile, registryAuthHeader } from "../../src/runtime/container/registry-login.js";

describe("registry credentials for images", () => {
  it.each([
    ["", "registry-1.docker.io"],
    ["docker.io", "registry-1.docker.io"],
    ["https://nvcr.io/", "nvcr.io"],
    ["nvcr.io:443/nvidia/", "nvcr.io/nvidia"],
    ["127.0.0.1:5000", "127.0.0.1:5000"],
  ])("the scope of registry=%j is %s", (registry, scope) => expect(normalizeScope(registry)).toBe(scope));

  it.each([
    ["alpine:3.18", "registry-1.docker.io", "registry-1.docker.io/library/alpine"],
    ["pytorch/pytorch@sha256:" + "a".repeat(64), "registry-1.docker.io", "registry-1.docker.io/pytorch/pytorch"],
    ["nvcr.io/nvidia/pytorch:24.01-py3", "nvcr.io", "nvcr.io/nvidia/pytorch"],
    ["localhost/x", "localhost", "localhost/x"],
    ["127.0.0.1:5000/team/img:1", "127.0.0.1:5000", "127.0.0.1:5000/team/img"],
  ])("%s is in %s, scope %s", (image, host, scope) => expect(imageScope(image)).toEqual({ host, scope }));

  it("takes the most specific scope that holds the image, by whole segments; none when none does", () => {
    const logins = [
      registryLoginFrom({ registry: "nvcr.io", username: "$oauthtoken", auth: "org-wide" }),
      registryLoginFrom({ registry: "nvcr.io/nvidia", username: "$oauthtoken", auth: "team" }),
      registryLoginFrom({ auth: "hub" }),
    ];
    expect(registryAuthFor("nvcr.io/nvidia/pytorch:1", logins)).toEqual({ host: "nvcr.io", username: "$oauthtoken", password: "team" });
    expect(registryAuthFor("nvcr.io/nvidiax/pytorch:1", logins)?.password).toBe("org-wide");
    expect(registryAuthFor("ubuntu:24.04", logins)).toEqual({ host: "registry-1.docker.io", username: "", password: "hub" });
    expect(registryAuthFor("ghcr.io/a/b", logins)).toBeUndefined();
  });

  it("writes podman's authfile and the Engine API's header", () => {
    const auth = { host: "registry-1.docker.io", username: "u", password: "p?>" };
    expect(JSON.parse(podmanAuthFile(auth))).toEqual({ auths: { "docker.io": { auth: Buffer.from("u:p?>").toString("base64") } } });
    const header = registryAuthHeader(auth);
    expect(header).not.toMatch(/[+/]/);
    expect(JSON.parse(Buffer.from(header, "base64url").toString())).toEqual({ username: "u", password: "p?>", serveraddress: auth.host });
  });
});
