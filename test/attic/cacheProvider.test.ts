/**
 * The AtticCache dynamic provider against the atticd stand-in (test/support/fakeAtticd.ts). The
 * scenarios that span resources (an endpoint change, a replacement, a refresh) run the provider as
 * Pulumi's dynamic-provider host does: serialized, then loaded from that text, once per copy of the
 * code (the state's and the program's). Not proven: the engine's own ordering (deletes after creates
 * and updates), which the provider's header documents.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
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
import { ROOT } from "../support/stacks";
import { freePort } from "../support/sshd";
import { scaled, waitFor } from "../support/timeScale";
import { FIXTURE_SIGNING_KEY_PEM } from "../../ci/commands/synth/mocks";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();

/**
 * Starts another `pulumi up`: forgets what the provider calls of the last one shared (the caches
 * they manage, the endpoints they moved; cacheProvider.ts), as a new dynamic-provider process would.
 */
function nextDeployment(): void {
  delete (globalThis as Record<symbol, unknown>)[Symbol.for("attic-infra:AtticCache deployment")];
}

let servers: FakeAtticd[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  nextDeployment();
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
    storeDir: "/nix/store",
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
  it("POSTs all five fields, then PATCHes every setting including retention, and reports the public key", async () => {
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
      store_dir: "/nix/store",
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
    nextDeployment();
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

  it("delete with destroyOnDelete checks the cache is still the one it manages, then destroys it with a cd token", async () => {
    const { server, outs } = await created({ destroyOnDelete: true });
    await deleteCache(outs);
    expect(server.caches.has("n3x")).toBe(false);
    expect(server.requests.map((r) => [r.method, r.permissions])).toEqual([
      ["GET", { r: 1 }],
      ["DELETE", { r: 1, cd: 1 }],
    ]);
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

  it("a new name is another cache: replace; a new endpoint is the same cache reached another way: update", () => {
    expect(diffCache(olds, inputs("http://a/", { name: "other" }))).toMatchObject({
      changes: true,
      replaces: ["name"],
    });
    expect(diffCache(olds, inputs("http://b/"))).toMatchObject({ changes: true, replaces: [] });
  });

  it("settings are updated in place", () => {
    expect(diffCache(olds, inputs("http://a/", { priority: 30 }))).toMatchObject({
      changes: true,
      replaces: [],
    });
  });
});

/** A copy of the provider as Pulumi's dynamic-provider host loads it from the state (cmd/dynamic-provider). */
async function loadedProvider(): Promise<Required<typeof cacheProvider>> {
  const serialized = await pulumi.runtime.serializeFunction(() => cacheProvider, { allowSecrets: true });
  return (requireFromString(serialized.text) as { handler(): Required<typeof cacheProvider> }).handler();
}

describe("the provider as Pulumi stores it", () => {
  it("the serialized provider, loaded like Pulumi's dynamic provider host does, creates a cache; its id is the name", async () => {
    const { server, endpoint } = await started();
    const provider = await loadedProvider();
    const result = await provider.create(inputs(endpoint));
    expect(result.id).toBe("n3x");
    expect(result.outs!.publicKey).toBe(server.caches.get("n3x")?.public_key);
  });

  it("an apiEndpoint change is an in-place update: the same cache and its key, no POST, no DELETE", async () => {
    const { server, endpoint } = await started();
    const port = new URL(endpoint).port;
    const provider = await loadedProvider();
    const { outs } = await provider.create(inputs(endpoint, { destroyOnDelete: true }));
    const key = server.caches.get("n3x")!.public_key;
    server.requests.length = 0;

    // The same server under another name: atticd now answers only that name (allowed-hosts).
    server.allowedHosts = [`localhost:${port}`];
    const moved = inputs(`http://localhost:${port}/`, { destroyOnDelete: true });
    expect(await provider.diff("n3x", outs, moved)).toMatchObject({ changes: true, replaces: [] });
    const updated = await provider.update("n3x", outs, moved);
    expect(updated.outs).toMatchObject({ apiEndpoint: moved.apiEndpoint, publicKey: key, adopted: false });
    expect(server.caches.get("n3x")!.public_key).toBe(key);
    expect(server.requests.map((r) => r.method)).not.toContain("DELETE");
    expect(server.requests.map((r) => r.method)).not.toContain("POST");
    expect(server.requests.every((r) => r.host === `localhost:${port}`)).toBe(true);
  });

  it("an apiEndpoint change to a server without the cache creates it there and leaves the old server alone", async () => {
    const old = await started();
    const fresh = await started();
    const provider = await loadedProvider();
    const { outs } = await provider.create(inputs(old.endpoint, { destroyOnDelete: true }));
    old.server.requests.length = 0;
    const updated = await provider.update("n3x", outs, inputs(fresh.endpoint, { destroyOnDelete: true }));
    expect(fresh.server.caches.get("n3x")).toMatchObject({
      priority: 41,
      retention_period: { Period: 7_776_000 },
    });
    expect(updated.outs!.publicKey).toBe(fresh.server.caches.get("n3x")!.public_key);
    expect(old.server.caches.has("n3x")).toBe(true);
    expect(old.server.requests).toEqual([]);
  });

  it("a state written before this provider (id <endpoint>#<name>, no storeDir) moves over without a replace; read rewrites the id", async () => {
    const { server, endpoint } = await started();
    const provider = await loadedProvider();
    const { outs } = await provider.create(inputs(endpoint));
    const { storeDir: _dropped, ...oldState } = outs as CacheProviderOutputs;
    const oldId = `${endpoint}#n3x`;
    expect(await provider.diff(oldId, oldState, inputs(endpoint))).toMatchObject({
      changes: true,
      replaces: [],
    });
    const updated = await provider.update(oldId, oldState, inputs(endpoint));
    expect(updated.outs).toMatchObject({ storeDir: "/nix/store", publicKey: outs!.publicKey });
    expect(await provider.read(oldId, updated.outs)).toMatchObject({ id: "n3x" });
    expect(server.requests.map((r) => r.method)).not.toContain("DELETE");
  });

  it("refresh + up reverts a manual is_public, priority, retention, upstream and store_dir change", async () => {
    const { server, endpoint } = await started();
    const provider = await loadedProvider();
    const config = inputs(endpoint);
    const { outs } = await provider.create(config);
    // As `attic cache configure` would leave it.
    Object.assign(server.caches.get("n3x")!, {
      is_public: false,
      priority: 10,
      retention_period: "Global",
      upstream_cache_key_names: [],
      store_dir: "/gnu/store",
    });
    const refreshed = await provider.read("n3x", outs);
    expect(refreshed.props).toMatchObject({
      isPublic: false,
      priority: 10,
      retentionSeconds: null,
      upstreamCacheKeyNames: [],
      storeDir: "/gnu/store",
    });
    expect(await provider.diff("n3x", refreshed.props!, config)).toMatchObject({
      changes: true,
      replaces: [],
    });
    await provider.update("n3x", refreshed.props!, config);
    expect(server.caches.get("n3x")).toMatchObject({
      is_public: true,
      priority: 41,
      retention_period: { Period: 7_776_000 },
      upstream_cache_key_names: ["cache.nixos.org-1"],
      store_dir: "/nix/store",
    });
    expect(await provider.diff("n3x", (await provider.read("n3x", outs)).props!, config)).toMatchObject({
      changes: false,
    });
  });

  it("a delete is skipped when a replacement (another copy of the provider) adopted the same cache", async () => {
    const { server, endpoint } = await started();
    const stateCopy = await loadedProvider();
    const programCopy = await loadedProvider();
    const { outs } = await stateCopy.create(inputs(endpoint, { destroyOnDelete: true }));
    nextDeployment();
    server.requests.length = 0;
    // A new URN for the same cache (a refactor, `--replace`): create-before-delete adopts it…
    const replacement = await programCopy.create(inputs(endpoint, { destroyOnDelete: true }));
    expect(replacement.outs!.adopted).toBe(true);
    // …and the old resource's delete, run after it, leaves it alone.
    await stateCopy.delete("n3x", outs);
    expect(server.caches.get("n3x")?.public_key).toBe(outs!.publicKey);
    expect(server.requests.map((r) => r.method)).not.toContain("DELETE");
  });

  it("a delete goes through the endpoint an update of this deployment moved the site to, never the old one", async () => {
    const { server, endpoint } = await started();
    const port = new URL(endpoint).port;
    const provider = await loadedProvider();
    const kept = await provider.create(inputs(endpoint, { name: "kept" }));
    const removed = await provider.create(inputs(endpoint, { name: "removed", destroyOnDelete: true }));
    nextDeployment();
    server.allowedHosts = [`localhost:${port}`];
    server.requests.length = 0;
    await provider.update("kept", kept.outs, inputs(`http://localhost:${port}/`, { name: "kept" }));
    await provider.delete("removed", removed.outs);
    expect(server.caches.has("removed")).toBe(false);
    expect(server.requests.filter((r) => r.host !== `localhost:${port}`)).toEqual([]);
  });

  it("a delete whose endpoint no longer answers destroys nothing and says how to stop managing the cache", async () => {
    const { server, endpoint } = await started();
    const provider = await loadedProvider();
    const { outs } = await provider.create(inputs(endpoint, { destroyOnDelete: true }));
    nextDeployment();
    server.allowedHosts = ["attic.example.com"];
    await expect(provider.delete("n3x", outs)).rejects.toThrow(
      /answered 400: .*Bad Host.* — atticd's allowed-hosts does not list this endpoint's host name\. The cache was not destroyed; to stop managing it and keep it, run `pulumi state delete` on this resource$/,
    );
    expect(server.caches.has("n3x")).toBe(true);
  });

  it("a delete destroys only the cache it manages: another cache that took the name stays", async () => {
    const { server, endpoint } = await started();
    const provider = await loadedProvider();
    const { outs } = await provider.create(inputs(endpoint, { destroyOnDelete: true }));
    nextDeployment();
    server.caches.set("n3x", { ...server.caches.get("n3x")!, public_key: "n3x:someoneElsesKey=" });
    await provider.delete("n3x", outs);
    expect(server.caches.get("n3x")?.public_key).toBe("n3x:someoneElsesKey=");
    expect(server.requests.map((r) => r.method)).not.toContain("DELETE");
  });

  it("a soft-deleted name is explained, naming softDeleteCaches", async () => {
    const { server, endpoint } = await started();
    server.softDeleteCaches = true;
    const provider = await loadedProvider();
    const { outs } = await provider.create(inputs(endpoint, { destroyOnDelete: true }));
    nextDeployment();
    await provider.delete("n3x", outs);
    expect(server.caches.get("n3x")?.deleted_at).toBeDefined();
    await expect(provider.create(inputs(endpoint))).rejects.toThrow(
      "attic cache n3x: POST " +
        `${endpoint}_api/v1/cache-config/n3x answered that the cache exists, but PATCH answers 404 NoSuchCache: the name belongs to a deleted cache; with soft-delete-caches (attic-infra:attic.softDeleteCaches) a deleted cache keeps its name in atticd's database for good, and no API frees it: declare the cache under another name`,
    );
  });

  it("refuses a token signing key over 4096 bits, which atticd would not start with", async () => {
    const { server, endpoint } = await started();
    const big = readFileSync(path.join(ROOT, "test", "fixtures", "rsa-4104-signing-key.pem"), "utf8");
    const provider = await loadedProvider();
    await expect(provider.create(inputs(endpoint, { signingKeyPem: big }))).rejects.toThrow(
      "attic cache n3x: the token signing key is 4104-bit RSA; atticd refuses keys over 4096 bits",
    );
    expect(server.caches.size).toBe(0);
  });
});
