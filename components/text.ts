/**
 * Text helpers that several components share: quoting for a POSIX shell and content hashes. They
 * live here, not inside one site's folder, so that no site imports another.
 */
import { createHash } from "node:crypto";

/** One shell word: single-quoted, with embedded single quotes closed, escaped and reopened. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Hex SHA-256 of a text: identifies a generated artifact (module, script) in triggers and ids. */
export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
