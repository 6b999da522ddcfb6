/**
 * Declarative attic caches. atticd has no configuration-file way to declare a cache (attic #169),
 * so this dynamic provider drives its HTTP API from the machine running `pulumi up`:
 *
 *   create  POST  /_api/v1/cache-config/{name}   (400 CacheAlreadyExists → adopt the cache)
 *           PATCH the same path: every setting, retention included (not part of create)
 *           GET   the same path: public_key, substituter_endpoint
 *   update  PATCH + GET; after an apiEndpoint change, first a GET through the new endpoint and a
 *           POST there when the cache is missing
 *   read    GET: every field of the cache's configuration, so `refresh` + `up` reverts a change
 *           made by hand (`attic cache configure`)
 *   delete  nothing, unless destroyOnDelete: GET, then DELETE (the cache's signing key and NAR
 *           index go too) — only the very cache this resource manages, see below
 *
 * A cache's identity is its name on its site: the resource id is the name. `apiEndpoint` is how the
 * site is reached, so a change of it is an in-place update, never a replacement (a replacement's
 * delete would destroy the cache the new resource had just adopted). A stack created before this
 * rule holds ids of the form `<apiEndpoint>#<name>` and a provider that replaced on an endpoint
 * change; its first `pulumi up` with this code updates every cache in place (the state gains
 * `storeDir`), which stores this provider in the state, and a later `pulumi refresh` rewrites the
 * id to the name (`read`; the engine accepts a changed id there). URNs do not change.
 *
 * A delete destroys nothing that another resource of the same deployment now manages (a
 * replacement that adopted the same name, or the same cache under a new URN): creates and updates
 * record the public keys of the caches they manage, and the delete, which the engine runs after
 * them, skips those. It destroys nothing but the cache it created or adopted: the server must
 * still report the public key in the state. And it never goes through an endpoint other than the
 * current one: when an update of this deployment moved the site's caches to another endpoint, the
 * delete goes there. Pulumi runs every call of a deployment in one dynamic-provider process and
 * loads each distinct serialized provider once (@pulumi/pulumi cmd/dynamic-provider, getProvider),
 * so the record is kept on `globalThis`, shared by the old state's copy of this code and the new.
 *
 * Each call carries a token minted on the spot, valid 10 minutes and only for this cache, with the
 * permissions that call needs: no admin token is stored in state or exported.
 *
 * Pulumi serializes this provider's functions into the state, so everything they use is in this
 * file or in Node itself, and Node modules are required where they are used: a module object
 * imported at the top would be serialized by value.
 */
import type * as nodeCrypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export interface CacheProviderInputs {
  /** atticd's API endpoint, ending with "/". */
  apiEndpoint: string;
  name: string;
  isPublic: boolean;
  /** The store directory the cache serves: /nix/store. */
  storeDir: string;
  priority: number;
  upstreamCacheKeyNames: string[];
  /** Seconds, or null for the server's default retention ("Global"). */
  retentionSeconds: number | null;
  destroyOnDelete: boolean;
  /** The stack's token signing key (PEM), to mint a short-lived token per call. Secret. */
  signingKeyPem: string;
  /** How long to wait for the server to answer `GET /` before giving up. */
  waitSeconds: number;
  /** Pause between attempts while waiting. */
  retryIntervalSeconds: number;
}

export interface CacheProviderOutputs extends CacheProviderInputs {
  publicKey: string;
  substituterEndpoint: string;
  /** True when the cache existed before this stack managed it. */
  adopted: boolean;
}

const CLAIM = "https://jwt.attic.rs/v1";
/** jwt-simple 0.11.9 (rsa 0.7.2) in atticd refuses RSA keys over 4096 bits (components/attic/tokens.ts). */
const MAX_RSA_BITS = 4096;
const SOFT_DELETED =
  "with soft-delete-caches (attic-infra:attic.softDeleteCaches) a deleted cache keeps its name in atticd's database for good, and no API frees it: declare the cache under another name";

/** What the provider calls of one deployment share: see the header. */
interface Deployment {
  /** Public keys of the caches that a create or an update of this deployment manages. */
  managed: Set<string>;
  /** Endpoints an update of this deployment moved a site's caches away from → where to. */
  moved: Map<string, string>;
}

function deployment(): Deployment {
  const shared = globalThis as unknown as Record<symbol, Deployment | undefined>;
  const key = Symbol.for("attic-infra:AtticCache deployment");
  return (shared[key] ??= { managed: new Set(), moved: new Map() });
}

/** A token for one cache with the given permission letters, valid for ten minutes. */
function callToken(inputs: CacheProviderInputs, letters: string[]): string {
  const { createPrivateKey, sign } = require("node:crypto") as typeof nodeCrypto;
  const key = createPrivateKey(inputs.signingKeyPem);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits > MAX_RSA_BITS)
    throw new Error(
      `attic cache ${inputs.name}: the token signing key is ${bits}-bit RSA; atticd refuses keys over ${MAX_RSA_BITS} bits`,
    );
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: "attic-infra",
    exp: now + 600,
    [CLAIM]: { caches: { [inputs.name]: Object.fromEntries(letters.map((l) => [l, 1])) } },
  };
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${enc({ alg: "RS256", typ: "JWT" })}.${enc(claims)}`;
  return `${body}.${sign("sha256", Buffer.from(body), key).toString("base64url")}`;
}

function cacheUrl(endpoint: string, name: string): string {
  return new URL(`_api/v1/cache-config/${encodeURIComponent(name)}`, endpoint).toString();
}

interface Answer {
  status: number;
  text: string;
}

async function call(method: string, url: string, token: string | undefined, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, text: await res.text() };
}

function failure(what: string, method: string, url: string, answer: Answer): Error {
  let hint = "";
  if (answer.status === 401 || answer.status === 403) {
    hint =
      " — atticd did not accept the token. An invalid token is treated as anonymous, so check that the server runs with this stack's signing key (jwt.signing on AWS, the environment file on the office host)";
  } else if (answer.status === 400 && answer.text.includes("Bad Host")) {
    hint = " — atticd's allowed-hosts does not list this endpoint's host name";
  }
  return new Error(
    `attic cache ${what}: ${method} ${url} answered ${answer.status}: ${answer.text.slice(0, 500) || "(empty body)"}${hint}`,
  );
}

const isNoSuchCache = (a: Answer) => a.status === 404 && a.text.includes("NoSuchCache");

/** Waits until `GET <endpoint>` answers 200 (the server is up), within waitSeconds. */
async function waitForServer(inputs: CacheProviderInputs): Promise<void> {
  const endpoint = inputs.apiEndpoint;
  const deadline = Date.now() + inputs.waitSeconds * 1000;
  let last: string;
  for (;;) {
    try {
      const answer = await call("GET", endpoint, undefined);
      if (answer.status === 200) return;
      last = `answered ${answer.status}`;
    } catch (err) {
      last = `could not be reached (${(err as Error).cause ?? (err as Error).message})`;
    }
    if (Date.now() + inputs.retryIntervalSeconds * 1000 > deadline) {
      throw new Error(
        `attic cache ${inputs.name}: the server at ${endpoint} did not come up within ${inputs.waitSeconds} s; it last ${last}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, inputs.retryIntervalSeconds * 1000));
  }
}

/** PATCHes every setting; false when the server has no such cache (404 NoSuchCache). */
async function configure(inputs: CacheProviderInputs): Promise<boolean> {
  const url = cacheUrl(inputs.apiEndpoint, inputs.name);
  const body = {
    is_public: inputs.isPublic,
    store_dir: inputs.storeDir,
    priority: inputs.priority,
    upstream_cache_key_names: inputs.upstreamCacheKeyNames,
    retention_period: inputs.retentionSeconds === null ? "Global" : { Period: inputs.retentionSeconds },
  };
  const answer = await call("PATCH", url, callToken(inputs, ["r", "cr", "cq"]), body);
  if (isNoSuchCache(answer)) return false;
  if (answer.status !== 200) throw failure(`${inputs.name} configure`, "PATCH", url, answer);
  return true;
}

/** The cache as the server reports it (get_cache_config), or undefined when it has none. */
interface Described {
  publicKey: string;
  substituterEndpoint: string;
  isPublic: boolean;
  storeDir: string;
  priority: number;
  upstreamCacheKeyNames: string[];
  retentionSeconds: number | null;
}

async function describe(
  inputs: CacheProviderInputs,
  endpoint = inputs.apiEndpoint,
): Promise<Described | undefined> {
  const url = cacheUrl(endpoint, inputs.name);
  const answer = await call("GET", url, callToken(inputs, ["r"]));
  if (isNoSuchCache(answer)) return undefined;
  if (answer.status !== 200) throw failure(`${inputs.name} read`, "GET", url, answer);
  const c = JSON.parse(answer.text) as {
    public_key?: string;
    substituter_endpoint?: string;
    is_public?: boolean;
    store_dir?: string;
    priority?: number;
    upstream_cache_key_names?: string[];
    retention_period?: "Global" | { Period: number };
  };
  if (
    typeof c.public_key !== "string" ||
    typeof c.substituter_endpoint !== "string" ||
    typeof c.is_public !== "boolean" ||
    typeof c.store_dir !== "string" ||
    typeof c.priority !== "number" ||
    !Array.isArray(c.upstream_cache_key_names) ||
    c.retention_period === undefined
  ) {
    throw failure(`${inputs.name} read`, "GET", url, {
      ...answer,
      text: `not a cache configuration: ${answer.text}`,
    });
  }
  return {
    publicKey: c.public_key,
    substituterEndpoint: c.substituter_endpoint,
    isPublic: c.is_public,
    storeDir: c.store_dir,
    priority: c.priority,
    upstreamCacheKeyNames: c.upstream_cache_key_names,
    retentionSeconds: c.retention_period === "Global" ? null : c.retention_period.Period,
  };
}

/** POSTs the cache; true when the server had it already (400 CacheAlreadyExists: adopt it). */
async function post(inputs: CacheProviderInputs): Promise<boolean> {
  const url = cacheUrl(inputs.apiEndpoint, inputs.name);
  const answer = await call("POST", url, callToken(inputs, ["r", "cc", "cr", "cq"]), {
    keypair: "Generate",
    is_public: inputs.isPublic,
    store_dir: inputs.storeDir,
    priority: inputs.priority,
    upstream_cache_key_names: inputs.upstreamCacheKeyNames,
  });
  if (answer.status === 400 && answer.text.includes("CacheAlreadyExists")) return true;
  if (answer.status !== 200) throw failure(`${inputs.name} create`, "POST", url, answer);
  return false;
}

/** Configures the cache just created or adopted and reads it back; explains a soft-deleted name. */
async function settle(inputs: CacheProviderInputs, adopted: boolean): Promise<CacheProviderOutputs> {
  const url = cacheUrl(inputs.apiEndpoint, inputs.name);
  const described = (await configure(inputs)) ? await describe(inputs) : undefined;
  if (!described) {
    throw new Error(
      adopted
        ? `attic cache ${inputs.name}: POST ${url} answered that the cache exists, but PATCH answers 404 NoSuchCache: the name belongs to a deleted cache; ${SOFT_DELETED}`
        : `attic cache ${inputs.name}: created, but ${url} answers 404 NoSuchCache`,
    );
  }
  deployment().managed.add(described.publicKey);
  return { ...inputs, ...described, adopted };
}

export async function createCache(inputs: CacheProviderInputs): Promise<CacheProviderOutputs> {
  await waitForServer(inputs);
  return settle(inputs, await post(inputs));
}

export async function updateCache(
  olds: CacheProviderOutputs,
  news: CacheProviderInputs,
): Promise<CacheProviderOutputs> {
  await waitForServer(news);
  if (olds.apiEndpoint !== news.apiEndpoint) {
    // The same cache behind a new name, or the site moved to another server: the old endpoint is
    // left alone (it may no longer answer), and the cache is created where it is missing.
    deployment().moved.set(olds.apiEndpoint, news.apiEndpoint);
    if (!(await describe(news))) return settle(news, await post(news));
  }
  if (!(await configure(news))) {
    throw new Error(
      `attic cache ${news.name}: it no longer exists on ${news.apiEndpoint} (it was deleted); run \`pulumi refresh\`, then \`pulumi up\` creates it again — unless ${SOFT_DELETED}`,
    );
  }
  return settle(news, olds.adopted);
}

/** The cache as the server has it: every setting, so that a diff against the config repairs drift. */
export async function readCache(props: CacheProviderOutputs): Promise<CacheProviderOutputs | undefined> {
  const described = await describe(props);
  return described ? { ...props, ...described } : undefined;
}

export async function deleteCache(props: CacheProviderOutputs): Promise<void> {
  // Data safety: removing a cache from config only stops managing it. Its NARs and signing key stay.
  if (!props.destroyOnDelete) return;
  const run = deployment();
  // Another resource of this deployment created or adopted this very cache: it stays.
  if (run.managed.has(props.publicKey)) return;
  const endpoint = run.moved.get(props.apiEndpoint) ?? props.apiEndpoint;
  let described: Described | undefined;
  try {
    described = await describe(props, endpoint);
  } catch (err) {
    throw new Error(
      `${(err as Error).message}. The cache was not destroyed; to stop managing it and keep it, run \`pulumi state delete\` on this resource`,
      { cause: err },
    );
  }
  // Gone already, or the name now belongs to a cache this resource never managed.
  if (!described || described.publicKey !== props.publicKey) return;
  const url = cacheUrl(endpoint, props.name);
  const answer = await call("DELETE", url, callToken(props, ["r", "cd"]));
  if (answer.status !== 200 && !isNoSuchCache(answer))
    throw failure(`${props.name} destroy`, "DELETE", url, answer);
}

/** A new name is another cache: replace. Everything else, the endpoint included, is updated in place. */
const REPLACE_ON = ["name"] as const;
const UPDATE_ON = [
  "apiEndpoint",
  "isPublic",
  "storeDir",
  "priority",
  "upstreamCacheKeyNames",
  "retentionSeconds",
  "destroyOnDelete",
  "signingKeyPem",
] as const;

export function diffCache(olds: CacheProviderOutputs, news: CacheProviderInputs): pulumi.dynamic.DiffResult {
  const differs = (k: keyof CacheProviderInputs) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]);
  const replaces = REPLACE_ON.filter(differs);
  const updates = UPDATE_ON.filter(differs);
  return {
    changes: replaces.length + updates.length > 0,
    replaces: [...replaces],
    // The new cache must exist before the old one is (maybe) destroyed: create-before-delete.
    deleteBeforeReplace: false,
  };
}

export const cacheProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: CacheProviderInputs) {
    const outs = await createCache(inputs);
    return { id: inputs.name, outs };
  },
  async diff(_id: string, olds: CacheProviderOutputs, news: CacheProviderInputs) {
    return diffCache(olds, news);
  },
  async update(_id: string, olds: CacheProviderOutputs, news: CacheProviderInputs) {
    return { outs: await updateCache(olds, news) };
  },
  async read(_id: string, props: CacheProviderOutputs) {
    // The id is the name: an id of the old form `<apiEndpoint>#<name>` is rewritten here.
    const outs = await readCache(props);
    return outs ? { id: props.name, props: outs } : { id: "", props: {} };
  },
  async delete(_id: string, props: CacheProviderOutputs) {
    await deleteCache(props);
  },
};

export interface AtticCacheArgs {
  apiEndpoint: pulumi.Input<string>;
  name: string;
  isPublic: boolean;
  priority: number;
  upstreamCacheKeyNames: string[];
  retentionSeconds: number | null;
  destroyOnDelete: boolean;
  signingKeyPem: pulumi.Input<string>;
  /** Default 900: a new AWS site needs its certificate, DNS and first task before it answers. */
  waitSeconds?: number;
  retryIntervalSeconds?: number;
}

/** One attic cache, created and kept configured through atticd's API. */
export class AtticCache extends pulumi.dynamic.Resource {
  declare readonly publicKey: pulumi.Output<string>;
  declare readonly substituterEndpoint: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;

  constructor(name: string, args: AtticCacheArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      cacheProvider,
      name,
      {
        ...args,
        storeDir: "/nix/store",
        signingKeyPem: pulumi.secret(args.signingKeyPem),
        waitSeconds: args.waitSeconds ?? 900,
        retryIntervalSeconds: args.retryIntervalSeconds ?? 10,
        publicKey: undefined,
        substituterEndpoint: undefined,
        adopted: undefined,
      },
      { ...opts, additionalSecretOutputs: ["signingKeyPem"] },
      "attic-infra",
      "AtticCache",
    );
  }
}
