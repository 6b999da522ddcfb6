/**
 * Where `npm run synth` may write. It replaces its output directory, so it writes only where that
 * deletes nothing of anyone's: a directory that does not exist yet, an empty one, one under the
 * repository's `out/`, or one an earlier synth wrote (it holds OUT_MARKER). Never the repository,
 * `/`, the home directory or a directory containing one of them, and never a file.
 */
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import * as path from "node:path";

export const OUT_MARKER = ".attic-infra-synth";

const ALLOWED =
  "synth writes only into a new or empty directory, one under out/, or one an earlier synth wrote";

/** `p` with symbolic links resolved as far as it exists. */
function real(p: string): string {
  if (existsSync(p)) return realpathSync(p);
  const parent = path.dirname(p);
  return parent === p ? p : path.join(real(parent), path.basename(p));
}

const within = (child: string, parent: string) => {
  const rel = path.relative(parent, child);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
};

/** Why synth must not write to `out`, or undefined when it may. */
export function checkOutDir(out: string, root: string): string | undefined {
  const target = real(path.resolve(out));
  const refuse = (why: string) => `--out ${out}: ${why}; ${ALLOWED}. Nothing was written or deleted.`;
  const protectedDirs = [
    ["the repository", real(root)],
    ["the home directory", real(homedir())],
    ["the root directory", "/"],
  ] as const;
  for (const [what, dir] of protectedDirs) if (target === dir) return refuse(`that is ${what}`);
  for (const [what, dir] of protectedDirs) if (within(dir, target)) return refuse(`that contains ${what}`);
  if (!existsSync(target)) {
    let ancestor = path.dirname(target);
    while (!existsSync(ancestor)) ancestor = path.dirname(ancestor);
    return statSync(ancestor).isDirectory()
      ? undefined
      : refuse(`it cannot be created: ${ancestor} is a file`);
  }
  if (!statSync(target).isDirectory()) return refuse("that is a file, not a directory");
  const entries = readdirSync(target);
  if (entries.length === 0 || entries.includes(OUT_MARKER)) return undefined;
  if (within(target, path.join(real(root), "out"))) return undefined;
  return refuse(
    `that directory holds other files (${entries.slice(0, 3).join(", ")}${entries.length > 3 ? ", …" : ""})`,
  );
}
