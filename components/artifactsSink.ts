/**
 * The environment variable naming the file the program appends its artifacts to when the synth
 * harness runs it in a process of its own (see artifacts.ts). Apart so that the harness can name it
 * without loading the Pulumi SDK.
 */
export const SYNTH_ARTIFACTS_ENV = "ATTIC_INFRA_SYNTH_ARTIFACTS";
