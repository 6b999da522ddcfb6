/**
 * The SDK's wire format for property values (pulumi/pulumi sdk/nodejs/runtime/rpc.ts): the special
 * signature key, the signatures of secrets, resource references and output values, and the sentinel
 * a value unknown until deploy travels as.
 */
export const SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
export const OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
