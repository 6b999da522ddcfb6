import type * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

/** The size this stack generates: the largest atticd accepts (tokens.ts, MAX_RSA_BITS). */
export const SIGNING_KEY_BITS = 4096;

/**
 * The stack's token signing key (RS256). Every token this stack mints is signed with it and every
 * server of the stack verifies with it: replacing it invalidates every token, so it is protected.
 * AWS tasks get only its public half; the office host gets the private half (for atticd-atticadm).
 */
export function tokenSigningKey(opts?: pulumi.CustomResourceOptions): tls.PrivateKey {
  return new tls.PrivateKey(
    "token-signing-key",
    { algorithm: "RSA", rsaBits: SIGNING_KEY_BITS },
    { ...opts, protect: true },
  );
}
