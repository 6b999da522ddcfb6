/**
 * What the office and vps NixOS modules (office.ts, vps.ts) share: where atticd and attic-infra keep
 * things on the host, atticd's environment file, and the module a host keeps once attic-infra is
 * removed from it.
 */

/** atticd's environment file (its secrets); the modules point services.atticd at it. */
export const ENVIRONMENT_FILE = "/var/lib/attic-infra/atticd.env";
export const ATTICD_STATE_DIR = "/var/lib/atticd";
/** With DynamicUser, systemd keeps the state directory here and links /var/lib/atticd to it. */
export const ATTICD_PRIVATE_STATE_DIR = "/var/lib/private/atticd";
export const SQLITE_DATABASE = `${ATTICD_STATE_DIR}/server.db`;

/** A site's chunk storage, as far as its keys go (the config requires both keys for S3). */
export interface StorageKeys {
  type: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
}

/**
 * atticd's environment file: the token signing key (for atticd-atticadm too, which mints tokens)
 * and, for S3 or S3-compatible storage, its keys (read by the vps's dump job too).
 */
export function environmentFile(privateKeyPem: string, storage: StorageKeys): string {
  const lines = [`ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=${Buffer.from(privateKeyPem).toString("base64")}`];
  if (storage.type === "s3" && storage.accessKeyId && storage.secretAccessKey)
    lines.push(
      `AWS_ACCESS_KEY_ID=${storage.accessKeyId}`,
      `AWS_SECRET_ACCESS_KEY=${storage.secretAccessKey}`,
    );
  return `${lines.join("\n")}\n`;
}

/** What the host's configuration holds after `pulumi destroy`: nothing, until the import is removed. */
export function removedModule(stack: string): string {
  return [
    `# attic-infra (stack ${stack}) was removed from this host. atticd's state in ${ATTICD_STATE_DIR} is kept.`,
    "# Remove the `./attic-infra/atticd.nix` import from the host's configuration, then this file.",
    "{ ... }:",
    "{ }",
    "",
  ].join("\n");
}
