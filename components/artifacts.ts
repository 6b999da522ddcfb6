/**
 * Every generated text artifact a deployment uploads or runs (atticd TOML, the NixOS module, remote
 * scripts, RouterOS scripts), by a readable relative path. Components record them as they build
 * them; the offline synth writes them to `<out>/files/` so a reviewer can read exactly what would
 * be deployed. In a real `pulumi up` the collection is unused.
 */
import * as pulumi from "@pulumi/pulumi";

const recorded = new Map<string, pulumi.Output<string>>();

export function recordArtifact(path: string, content: pulumi.Input<string>): void {
  if (recorded.has(path)) throw new Error(`artifact ${path} is recorded twice`);
  recorded.set(path, pulumi.output(content));
}

/** The artifacts recorded so far, in recording order. */
export function recordedArtifacts(): ReadonlyMap<string, pulumi.Output<string>> {
  return recorded;
}

export function clearArtifacts(): void {
  recorded.clear();
}
