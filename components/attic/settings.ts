/**
 * The one model of atticd's configuration. Settings are computed here once, in atticd's own key
 * names, and rendered for each place that runs the server: TOML for ECS (ATTIC_SERVER_CONFIG_BASE64)
 * and the NixOS module's `services.atticd.settings`.
 *
 * Nothing secret ever enters this object: it ends up in an ECS task definition or the
 * world-readable Nix store. Secrets reach atticd through its environment (PGPASSWORD, the JWT key).
 */
import { stringify } from "smol-toml";
import type { AtticConfig } from "../../config/schema";

export type Role = "api-server" | "garbage-collector" | "monolithic";

export type StorageSettings =
  { type: "local"; path: string } | { type: "s3"; region: string; bucket: string; endpoint?: string };

/** A site's storage block as atticd sees it: where chunks go, without the credentials or the device. */
export function storageSettings(
  s:
    | { type: "local"; path: string }
    | { type: "s3"; region: string; bucket: string; endpoint?: string | undefined },
): StorageSettings {
  if (s.type === "local") return { type: "local", path: s.path };
  return s.endpoint === undefined
    ? { type: "s3", region: s.region, bucket: s.bucket }
    : { type: "s3", region: s.region, bucket: s.bucket, endpoint: s.endpoint };
}

export interface AtticSettings {
  listen: string;
  "allowed-hosts": string[];
  "api-endpoint": string;
  "soft-delete-caches": boolean;
  "require-proof-of-possession": boolean;
  database: { url: string; heartbeat: boolean };
  storage: StorageSettings;
  chunking: {
    "nar-size-threshold": number;
    "min-size": number;
    "avg-size": number;
    "max-size": number;
  };
  compression: { type: "none" | "brotli" | "zstd" | "xz"; level?: number };
  "garbage-collection": { interval: string; "default-retention-period": string };
  jwt?: { signing: { "token-rs256-pubkey-base64": string } };
}

/** Every key atticd's Config accepts (server/src/config.rs, deny_unknown_fields), by table. */
export const ATTICD_KNOWN_KEYS: Record<string, readonly string[]> = {
  "": [
    "listen",
    "allowed-hosts",
    "api-endpoint",
    "substituter-endpoint",
    "soft-delete-caches",
    "require-proof-of-possession",
    "max-nar-info-size",
    "database",
    "storage",
    "chunking",
    "compression",
    "garbage-collection",
    "jwt",
  ],
  database: ["url", "heartbeat"],
  storage: ["type", "path", "region", "bucket", "endpoint", "credentials"],
  chunking: ["nar-size-threshold", "min-size", "avg-size", "max-size"],
  compression: ["type", "level"],
  "garbage-collection": ["interval", "default-retention-period"],
  jwt: ["token-bound-issuer", "token-bound-audiences", "signing"],
  "jwt.signing": ["token-rs256-pubkey-base64", "token-rs256-secret-base64", "token-hs256-secret-base64"],
};

export type SiteFacts =
  | {
      /** AWS: api-server and garbage-collector tasks. */
      kind: "aws";
      hostname: string;
      database: { user: string; host: string; port: number; name: string };
      bucket: { region: string; bucket: string };
      /** The token signing public key (SPKI PEM). Tasks can verify tokens but never mint them. */
      tokenPublicKeyPem: string;
    }
  | {
      /** The office NixOS host: monolithic, SQLite, the private key in its environment file. */
      kind: "office";
      apiEndpoint: string;
      listen: string;
      storage: StorageSettings;
    }
  | {
      /**
       * A public NixOS host (a VPS): monolithic behind a TLS proxy on the same host, atticd on
       * loopback, PostgreSQL over the Unix socket (or SQLite), the private key in its environment file.
       */
      kind: "vps";
      domain: string;
      /** Loopback address atticd listens on, e.g. 127.0.0.1:8080: only the proxy reaches it. */
      listen: string;
      database: "postgresql" | "sqlite";
      storage: StorageSettings;
    };

export const AWS_LISTEN = "[::]:8080";
export const OFFICE_DATABASE_URL = "sqlite:///var/lib/atticd/server.db?mode=rwc";
/**
 * The local PostgreSQL over its Unix socket, peer-authenticated as the OS user atticd runs as (sqlx
 * takes the user name from the process when the URL has none): no password exists anywhere. The
 * nixpkgs atticd module orders itself after PostgreSQL only for a `postgresql://` URL that
 * contains `/run/postgresql`.
 */
export const VPS_POSTGRES_URL = "postgresql:///atticd?host=/run/postgresql";

/**
 * A PostgreSQL URL without a password: sqlx reads PGPASSWORD from the environment. atticd parses the
 * URL with `Url::parse(..).expect(..)`, so every part is percent-encoded. sslmode=require encrypts
 * without verifying: atticd's rustls trusts webpki roots only, not the Amazon RDS CA.
 */
export function postgresUrl(db: { user: string; host: string; port: number; name: string }): string {
  return `postgresql://${encodeURIComponent(db.user)}@${db.host}:${db.port}/${encodeURIComponent(db.name)}?sslmode=require`;
}

export function atticSettings(attic: AtticConfig, site: SiteFacts): AtticSettings {
  const common = {
    "soft-delete-caches": attic.softDeleteCaches,
    "require-proof-of-possession": attic.requireProofOfPossession,
    chunking: {
      "nar-size-threshold": attic.chunking.narSizeThreshold,
      "min-size": attic.chunking.minSize,
      "avg-size": attic.chunking.avgSize,
      "max-size": attic.chunking.maxSize,
    },
    compression:
      attic.compression.level === undefined
        ? { type: attic.compression.type }
        : { type: attic.compression.type, level: attic.compression.level },
    "garbage-collection": {
      interval: attic.garbageCollection.interval,
      "default-retention-period": attic.garbageCollection.defaultRetention,
    },
  };
  if (site.kind === "aws") {
    return {
      listen: AWS_LISTEN,
      // The ALB health-checks `/` with the task's IP as Host: any allow-list would fail it.
      "allowed-hosts": [],
      "api-endpoint": `https://${site.hostname}/`,
      ...common,
      database: { url: postgresUrl(site.database), heartbeat: true },
      storage: { type: "s3", region: site.bucket.region, bucket: site.bucket.bucket },
      jwt: {
        signing: { "token-rs256-pubkey-base64": Buffer.from(site.tokenPublicKeyPem).toString("base64") },
      },
    };
  }
  if (site.kind === "vps") {
    return {
      listen: site.listen,
      // The proxy passes the client's Host (Caddy by default, NGINX through recommendedProxySettings)
      // and the deploy's health check sends this one: any other name gets 400 "Bad Host".
      "allowed-hosts": [site.domain],
      "api-endpoint": `https://${site.domain}/`,
      ...common,
      database:
        site.database === "postgresql"
          ? { url: VPS_POSTGRES_URL, heartbeat: true }
          : { url: OFFICE_DATABASE_URL, heartbeat: false },
      storage: site.storage,
    };
  }
  // No [jwt.signing]: atticd then reads ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64 from the environment
  // file, and `atticd-atticadm make-token` works on the host.
  return {
    listen: site.listen,
    "allowed-hosts": [],
    "api-endpoint": site.apiEndpoint,
    ...common,
    database: { url: OFFICE_DATABASE_URL, heartbeat: false },
    storage: site.storage,
  };
}

/** atticd's TOML for one role. The role itself is a command-line flag (`--mode`), not a setting. */
export function renderToml(settings: AtticSettings): string {
  return stringify(settings);
}
