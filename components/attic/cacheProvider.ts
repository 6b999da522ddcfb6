/**
 * Declarative attic caches. atticd has no configuration-file way to declare a cache (attic #169),
 * so this dynamic provider drives its HTTP API from the machine running `pulumi up`:
 *
 *   create  POST  /_api/v1/cache-config/{name}   (400 CacheAlreadyExists → adopt the cache)
 *           PATCH the same path: is_public, priority, upstream keys, retention (not part of create)
 *           GET   the same path: public_key, substituter_endpoint
 *   update  PATCH + GET
 *   read    GET
 *   delete  nothing, unless destroyOnDelete: DELETE (the cache's signing key and NAR index go too)
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

/** A token for one cache with the given permission letters, valid for ten minutes. */
function callToken(inputs: CacheProviderInputs, letters: string[]): string {
  const { createPrivateKey, sign } = require("node:crypto") as typeof nodeCrypto;
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: "attic-infra",
    exp: now + 600,
    [CLAIM]: { caches: { [inputs.name]: Object.fromEntries(letters.map((l) => [l, 1])) } },
  };
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${enc({ alg: "RS256", typ: "JWT" })}.${enc(claims)}`;
  const signature = sign("sha256", Buffer.from(body), createPrivateKey(inputs.signingKeyPem)).toString(
    "base64url",
  );
  return `${body}.${signature}`;
}

function cacheUrl(inputs: CacheProviderInputs): string {
  return new URL(`_api/v1/cache-config/${encodeURIComponent(inputs.name)}`, inputs.apiEndpoint).toString();
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

/** Waits until `GET <apiEndpoint>` answers 200 (the server is up), within waitSeconds. */
async function waitForServer(inputs: CacheProviderInputs): Promise<void> {
  const deadline = Date.now() + inputs.waitSeconds * 1000;
  let last: string;
  for (;;) {
    try {
      const answer = await call("GET", inputs.apiEndpoint, undefined);
      if (answer.status === 200) return;
      last = `answered ${answer.status}`;
    } catch (err) {
      last = `could not be reached (${(err as Error).cause ?? (err as Error).message})`;
    }
    if (Date.now() + inputs.retryIntervalSeconds * 1000 > deadline) {
      throw new Error(
        `attic cache ${inputs.name}: the server at ${inputs.apiEndpoint} did not come up within ${inputs.waitSeconds} s; it last ${last}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, inputs.retryIntervalSeconds * 1000));
  }
}

function retentionPeriod(inputs: CacheProviderInputs): "Global" | { Period: number } {
  return inputs.retentionSeconds === null ? "Global" : { Period: inputs.retentionSeconds };
}

async function configure(inputs: CacheProviderInputs): Promise<void> {
  const url = cacheUrl(inputs);
  const body = {
    is_public: inputs.isPublic,
    priority: inputs.priority,
    upstream_cache_key_names: inputs.upstreamCacheKeyNames,
    retention_period: retentionPeriod(inputs),
  };
  const answer = await call("PATCH", url, callToken(inputs, ["r", "cr", "cq"]), body);
  if (answer.status !== 200) throw failure(`${inputs.name} configure`, "PATCH", url, answer);
}

async function describe(
  inputs: CacheProviderInputs,
): Promise<{ publicKey: string; substituterEndpoint: string } | undefined> {
  const url = cacheUrl(inputs);
  const answer = await call("GET", url, callToken(inputs, ["r"]));
  if (answer.status === 404) return undefined;
  if (answer.status !== 200) throw failure(`${inputs.name} read`, "GET", url, answer);
  const config = JSON.parse(answer.text) as { public_key?: string; substituter_endpoint?: string };
  if (!config.public_key || !config.substituter_endpoint) {
    throw failure(`${inputs.name} read`, "GET", url, {
      ...answer,
      text: `no public_key/substituter_endpoint in ${answer.text}`,
    });
  }
  return { publicKey: config.public_key, substituterEndpoint: config.substituter_endpoint };
}

export async function createCache(inputs: CacheProviderInputs): Promise<CacheProviderOutputs> {
  await waitForServer(inputs);
  const url = cacheUrl(inputs);
  const answer = await call("POST", url, callToken(inputs, ["r", "cc", "cr", "cq"]), {
    keypair: "Generate",
    is_public: inputs.isPublic,
    store_dir: "/nix/store",
    priority: inputs.priority,
    upstream_cache_key_names: inputs.upstreamCacheKeyNames,
  });
  let adopted = false;
  if (answer.status === 400 && answer.text.includes("CacheAlreadyExists")) adopted = true;
  else if (answer.status !== 200) throw failure(`${inputs.name} create`, "POST", url, answer);
  await configure(inputs);
  const described = await describe(inputs);
  if (!described) throw new Error(`attic cache ${inputs.name}: created, but GET ${url} answered 404`);
  return { ...inputs, ...described, adopted };
}

export async function updateCache(
  olds: CacheProviderOutputs,
  news: CacheProviderInputs,
): Promise<CacheProviderOutputs> {
  await waitForServer(news);
  await configure(news);
  const described = await describe(news);
  if (!described)
    throw new Error(
      `attic cache ${news.name}: it no longer exists on ${news.apiEndpoint}; run \`pulumi refresh\``,
    );
  return { ...news, ...described, adopted: olds.adopted };
}

export async function readCache(props: CacheProviderOutputs): Promise<CacheProviderOutputs | undefined> {
  const described = await describe(props);
  return described ? { ...props, ...described } : undefined;
}

export async function deleteCache(props: CacheProviderOutputs): Promise<void> {
  // Data safety: removing a cache from config only stops managing it. Its NARs and signing key stay.
  if (!props.destroyOnDelete) return;
  const url = cacheUrl(props);
  const answer = await call("DELETE", url, callToken(props, ["r", "cd"]));
  if (answer.status !== 200 && answer.status !== 404)
    throw failure(`${props.name} destroy`, "DELETE", url, answer);
}

/** Fields whose change means another cache (or another server): replace, never rename in place. */
const REPLACE_ON = ["name", "apiEndpoint"] as const;
const UPDATE_ON = [
  "isPublic",
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
    return { id: `${inputs.apiEndpoint}#${inputs.name}`, outs };
  },
  async diff(_id: string, olds: CacheProviderOutputs, news: CacheProviderInputs) {
    return diffCache(olds, news);
  },
  async update(_id: string, olds: CacheProviderOutputs, news: CacheProviderInputs) {
    return { outs: await updateCache(olds, news) };
  },
  async read(id: string, props: CacheProviderOutputs) {
    const outs = await readCache(props);
    return outs ? { id, props: outs } : { id: "", props: {} };
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
