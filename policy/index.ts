/**
 * attic-infra's policy pack: `pulumi preview --policy-pack policy` (any backend). The rules are in
 * policies.ts; all are mandatory.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("attic-infra", { enforcementLevel: "mandatory", policies });
