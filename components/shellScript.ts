/**
 * Shell scripts live in .sh files next to the code that runs them, as nixpkgs' writeShellScript
 * keeps static text: editors and shellcheck (`npm run lint`) see the real file. The program reads a
 * file at synth time and supplies values as a header of quoted `KEY='value'` lines (or as
 * arguments), never by interpolating into the script's text.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { shellQuote } from "./text";

/**
 * The script in `name`, in `dir`: the calling module's own directory (`__dirname`), since Pulumi
 * runs the program from its sources (ts-node) and a script sits beside the module that reads it.
 *
 * Every script file starts with its notes — comment lines for its readers and shellcheck
 * directives, ended by one empty line — which are not part of the script: a script runs after the
 * header the program writes (set -eu, its values), which shellcheck does not see, and the notes say
 * what it expects there.
 */
export function readScript(dir: string, name: string): string {
  const text = readFileSync(path.join(dir, name), "utf8");
  const end = text.indexOf("\n\n");
  if (
    !text.startsWith("#") ||
    end < 0 ||
    text
      .slice(0, end)
      .split("\n")
      .some((l) => !l.startsWith("#"))
  )
    throw new Error(
      `${path.join(dir, name)}: a script file starts with its notes (# lines), then an empty line`,
    );
  return text.slice(end + 2);
}

/** Shell variable names: what a header may assign. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * One `KEY='value'` line per entry, in order; any value, quoted for a POSIX shell. A value with
 * `$`, a backquote or a backslash (a script, a Nix module) is literal text: shellcheck is told so.
 */
export function shellAssignments(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => {
      if (!NAME.test(key)) throw new Error(`${JSON.stringify(key)} is not a shell variable name`);
      const literal = /[$`\\]/.test(value) ? LITERAL : "";
      return `${literal}${key}=${shellQuote(value)}\n`;
    })
    .join("");
}

const LITERAL = "# shellcheck disable=SC1003,SC2016 # literal text, expanded nowhere\n";

/**
 * The header every generated script starts with: `set -eu`, a comment saying what it is, and its
 * values. The script's files follow it.
 */
export function shellHeader(comment: string[], values: Record<string, string>): string {
  return `set -eu\n${comment.map((line) => `# ${line}\n`).join("")}${shellAssignments(values)}`;
}
