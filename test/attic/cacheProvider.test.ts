import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
// @ts-expect-error: no type declarations; a dependency of @pulumi/pulumi.
import requireFromString from "require-from-string";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type CacheProviderInputs,
  type CacheProviderOutputs,
  cacheProvider,
  createCache,
  deleteCache,
  diffCache,
  readCache,
  updateCache,
} from "../../components/attic/cacheProvider";
import { FakeAtticd } from "../support/fakeAtticd";
import { freePort } from "../support/sshd";
import { scaled, waitFor } from "../support/timeScale";
import { FIXTURE_SIGNING_KEY_PEM } from "../../ci/commands/synth/mocks";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();

let servers: FakeAtticd[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function started(publicKeyPem = PUBLIC_KEY): Promise<{ server: FakeAtticd; endpoint: string }> {
  const server = new FakeAtticd(publicKeyPem);
  servers.push(server);
  const port = await server.listen();
  return { server, endpoint: `http://127.0.0.1:${port}/` };
}

function inputs(endpoint: string, overrides: Partial<CacheProviderInputs> = {}): CacheProviderInputs {
  return {
    apiEndpoint: endpoint,
    name: "n3x",
    isPublic: true,
    priority: 41,
    upstreamCacheKeyNames: ["cache.nixos.org-1"],
    retentionSeconds: 7_776_000,
    destroyOnDelete: false,
    signingKeyPem: FIXTURE_SIGNING_KEY_PEM,
    waitSeconds: scaled(5).seconds,
    retryIntervalSeconds: 0.1,
    ...overrides,
  };
}

describe("creating a cache", () => {
  it("POSTs all five fields, then PATCHes the rest including retention, and reports the public key", async () => {
    const { server, endpoint } = await started();
    const outs = await createCache(inputs(endpoint));

    const api = server.requests.filter((r) => r.path !== "/");
    expect(api.map((r) => r.method)).toEqual(["POST", "PATCH", "GET"]);
    expect(api[0]!.body).toEqual({
      keypair: "Generate",
      is_public: true,
      store_dir: "/nix/store",
      priority: 41,
      upstream_cache_key_names: ["cache.nixos.org-1"],
    });
    expect(api[1]!.body).toEqual({
      is_public: true,
      priority: 41,
      upstream_cache_key_names: ["cache.nixos.org-1"],
      retention_period: { Period: 7_776_000 },
    });
    expect(server.caches.get("n3x")?.retention_period).toEqual({ Period: 7_776_000 });
    expect(outs.publicKey).toBe(server.caches.get("n3x")?.public_key);
    expect(outs.substituterEndpoint).toBe(`${endpoint}n3x`);
    expect(outs.adopted).toBe(false);
  });

  it("authenticates each call with a token for this cache only, with just the permissions it needs", async () => {
    const { server, endpoint } = await started();
    await createCache(inputs(endpoint));
    const api = server.requests.filter((r) => r.path !== "/");
    expect(api.map((r) => [r.method, r.subject, r.permissions])).toEqual([
      ["POST", "attic-infra", { r: 1, cc: 1, cr: 1, cq: 1 }],
      ["PATCH", "attic-infra", { r: 1, cr: 1, cq: 1 }],
      ["GET", "attic-infra", { r: 1 }],
    ]);
  });

  it("adopts a cache that already exists (400 CacheAlreadyExists) and brings its settings in line", async () => {
    const { server, endpoint } = await started();
    server.caches.set("n3x", {
      is_public: false,
      store_dir: "/nix/store",
      priority: 10,
      upstream_cache_key_names: [],
      retention_period: "Global",
      public_key: "n3x:existingKey=",
    });
    const outs = await createCache(inputs(endpoint));
    expect(outs.adopted).toBe(true);
    expect(outs.publicKey).toBe("n3x:existingKey=");
    expect(server.caches.get("n3x")).toMatchObject({
      is_public: true,
      priority: 41,
      upstream_cache_key_names: ["cache.nixos.org-1"],
    });
  });

  it("waits while the server is not up yet (503 from the proxy), then creates", async () => {
    const { server, endpoint } = await started();
    server.unavailableFor = 3;
    await createCache(inputs(endpoint));
    expect(server.requests.filter((r) => r.path === "/").length).toBe(4);
    expect(server.caches.has("n3x")).toBe(true);
  });

  it("waits while nothing listens yet, then creates once the server starts", async () => {
    const port = await freePort();
    const server = new FakeAtticd(PUBLIC_KEY);
    servers.push(server);
    const fetches = vi.spyOn(globalThis, "fetch");
    const creating = createCache(inputs(`http://127.0.0.1:${port}/`));
    await waitFor(
      "a first attempt to be refused",
      () => fetches.mock.settledResults.some((r) => r.type === "rejected"),
      5,
    );
    fetches.mockRestore();
    await server.listen(port);
    await creating;
    expect(server.caches.has("n3x")).toBe(true);
  });

  it("gives up after waitSeconds, saying what the server last answered", async () => {
    const { server, endpoint } = await started();
    server.unavailableFor = 1000;
    // A deadline meant to run out: the shortest one there is.
    await expect(createCache(inputs(endpoint, { waitSeconds: 1 }))).rejects.toThrow(
      `attic cache n3x: the server at ${endpoint} did not come up within 1 s; it last answered 503`,
    );
  });

  it("fails with the server's answer when the token is not accepted (401)", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    const { server, endpoint } = await started(other);
    await expect(createCache(inputs(endpoint))).rejects.toThrow(
      `attic cache n3x create: POST ${endpoint}_api/v1/cache-config/n3x answered 401: {"code":401,"error":"Unauthorized","message":"Unauthorized."} — atticd did not accept the token`,
    );
    expect(server.caches.size).toBe(0);
  });
});

describe("updating, reading and deleting", () => {
  async function created(overrides: Partial<CacheProviderInputs> = {}) {
    const { server, endpoint } = await started();
    const outs = await createCache(inputs(endpoint, overrides));
    server.requests.length = 0;
    return { server, endpoint, outs };
  }

  it("an update of retention PATCHes the new period; unset retention goes back to the server default", async () => {
    const { server, endpoint, outs } = await created();
    await updateCache(outs, inputs(endpoint, { retentionSeconds: 86_400 }));
    expect(server.caches.get("n3x")?.retention_period).toEqual({ Period: 86_400 });
    await updateCache(outs, inputs(endpoint, { retentionSeconds: null }));
    expect(server.caches.get("n3x")?.retention_period).toBe("Global");
  });

  it("read returns the server's current public key, or nothing when the cache is gone", async () => {
    const { server, outs } = await created();
    expect((await readCache(outs))?.publicKey).toBe(server.caches.get("n3x")?.public_key);
    server.caches.delete("n3x");
    expect(await readCache(outs)).toBeUndefined();
  });

  it("delete without destroyOnDelete keeps the cache and sends nothing", async () => {
    const { server, outs } = await created();
    await deleteCache(outs);
    expect(server.caches.has("n3x")).toBe(true);
    expect(server.requests).toEqual([]);
  });

  it("delete with destroyOnDelete destroys the cache with a cd token", async () => {
    const { server, outs } = await created({ destroyOnDelete: true });
    await deleteCache(outs);
    expect(server.caches.has("n3x")).toBe(false);
    expect(server.requests.map((r) => [r.method, r.permissions])).toEqual([["DELETE", { r: 1, cd: 1 }]]);
  });
});

describe("diff", () => {
  const olds: CacheProviderOutputs = {
    ...inputs("http://a/"),
    publicKey: "k",
    substituterEndpoint: "s",
    adopted: false,
  };

  it("an unchanged cache has no changes", () => {
    expect(diffCache(olds, inputs("http://a/"))).toMatchObject({ changes: false, replaces: [] });
  });

  it("a new name or endpoint is another cache: replace", () => {
    expect(diffCache(olds, inputs("http://a/", { name: "other" }))).toMatchObject({
      changes: true,
      replaces: ["name"],
    });
    expect(diffCache(olds, inputs("http://b/"))).toMatchObject({ changes: true, replaces: ["apiEndpoint"] });
  });

  it("settings are updated in place", () => {
    expect(diffCache(olds, inputs("http://a/", { priority: 30 }))).toMatchObject({
      changes: true,
      replaces: [],
    });
  });
});

describe("the provider as Pulumi stores it", () => {
  it("the serialized provider, loaded like Pulumi's dynamic provider host does, creates a cache", async () => {
    const { server, endpoint } = await started();
    const serialized = await pulumi.runtime.serializeFunction(() => cacheProvider, { allowSecrets: true });
    // Exactly what @pulumi/pulumi's dynamic provider host (cmd/dynamic-provider) does with __provider.
    const provider = (requireFromString(serialized.text) as { handler(): typeof cacheProvider }).handler();
    const result = await provider.create!(inputs(endpoint));
    expect(result.outs.publicKey).toBe(server.caches.get("n3x")?.public_key);
  });
});
