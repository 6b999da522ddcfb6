/**
 * Every generated text artifact a deployment uploads or runs (atticd TOML, the NixOS module, remote
 * scripts, RouterOS scripts), by a readable relative path. Components record them as they build
 * them; the offline synth writes them to `<out>/files/` so a reviewer can read exactly what would
 * be deployed. In a real `pulumi up` the collection is unused.
 *
 * When the synth harness runs the program in its own process (through Pulumi's entry point), it
 * names a file in SYNTH_ARTIFACTS_ENV: each artifact is appended there as one JSON line when it is
 * recorded, and again with its content once that is known. In a preview, content that depends on
 * values known only after deploy never is.
 */
import { appendFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { SYNTH_ARTIFACTS_ENV } from "./artifactsSink";

const recorded = new Map<string, pulumi.Output<string>>();

export function recordArtifact(path: string, content: pulumi.Input<string>): void {
  if (recorded.has(path)) throw new Error(`artifact ${path} is recorded twice`);
  const output = pulumi.output(content);
  recorded.set(path, output);
  const sink = process.env[SYNTH_ARTIFACTS_ENV];
  if (sink) {
    appendFileSync(sink, `${JSON.stringify({ path })}\n`);
    output.apply(async (text) => {
      const secret = await pulumi.isSecret(output);
      appendFileSync(sink, `${JSON.stringify({ path, content: text, secret })}\n`);
    });
  }
}

/** The artifacts recorded so far, in recording order. */
export function recordedArtifacts(): ReadonlyMap<string, pulumi.Output<string>> {
  return recorded;
}

export function clearArtifacts(): void {
  recorded.clear();
}
