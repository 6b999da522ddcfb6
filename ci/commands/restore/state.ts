/**
 * Points a stack's RDS instance at a restored copy, in a `pulumi stack export`: what keeps Pulumi in
 * charge of the database after a restore (docs/runbooks.md, "RDS: restore from a snapshot or a
 * point in time").
 *
 * Since the Terraform AWS provider v5 (pulumi-aws ≥ 6) an RDS instance's id is its immutable DBI
 * resource id (`db-…`), and the identifier is a name the provider can change in place. A restore
 * makes a new instance with a new resource id; the export is edited so that the existing resource,
 * same URN, parent, dependents and options (protect, retainOnDelete), now is that instance:
 * - `id`, `outputs.id` and `outputs.resourceId` become the restored instance's resource id. The
 *   bridge rebuilds the Terraform state from the outputs whenever they hold
 *   `__pulumi_raw_state_delta` (pulumi-terraform-bridge provider.go `Read`), so that key is removed,
 *   as the bridge's own error message tells people who edit state by hand to do; the next refresh
 *   writes it again.
 * - `inputs.identifier` and `outputs.identifier` become the restored identifier. The identifier is
 *   auto-named: on the next `up` the bridge reuses the old input value for it (`schema.go`, old
 *   defaults), so with this edit `up` keeps the restored name and renames nothing. (A refresh would
 *   write it into the inputs as well; setting it here does not depend on that.)
 * Derived from the source of the bridge and the provider, not run against AWS here (no AWS, no
 * Pulumi CLI): a first restore deserves a scratch stack (docs/runbooks.md).
 *
 * `pulumi state delete` + `pulumi import` cannot do this: the instance has dependents (task
 * definitions, alarms, the dashboard, outputs), and the delete refuses.
 */
import { createHash } from "node:crypto";

export const RDS_INSTANCE = "aws:rds/instance:Instance";
/** A DBI resource id, as the provider's finder recognises one (`^db-[0-9A-Za-z]{2,255}$`). */
export const DBI_RESOURCE_ID = /^db-[0-9A-Za-z]{2,255}$/;
/** An RDS instance identifier: a letter, then letters, digits and single hyphens, 63 at most. */
export const DB_IDENTIFIER = /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}(?<!-)$/;
/** The bridge's key for the raw Terraform state delta (pulumi-terraform-bridge reservedkeys). */
export const RAW_STATE_DELTA = "__pulumi_raw_state_delta";

export interface ExportedResource {
  urn: string;
  type: string;
  custom?: boolean;
  id?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  parent?: string;
  provider?: string;
  dependencies?: string[];
  propertyDependencies?: Record<string, string[]>;
  deletedWith?: string;
  delete?: boolean;
  [key: string]: unknown;
}

/** `pulumi stack export`'s document (apitype.UntypedDeployment with a DeploymentV3). */
export interface StackExport {
  version: number;
  deployment: {
    manifest?: { time?: string; magic?: string; version?: string; [key: string]: unknown };
    resources?: ExportedResource[];
    pending_operations?: unknown[];
    [key: string]: unknown;
  };
}

export class RestoreError extends Error {}

export interface PointResult {
  exported: StackExport;
  urn: string;
  previousId: string;
  /** False when the resource already was the restored instance (a retry): nothing to import. */
  changed: boolean;
}

/** The edited export (a copy) whose RDS instance `from` is now the restored instance. */
export function pointInstanceAt(
  original: StackExport,
  target: { from: string; to: string; resourceId: string },
): PointResult {
  if (!DBI_RESOURCE_ID.test(target.resourceId))
    throw new RestoreError(`${target.resourceId} is not an RDS resource id (db-…, DbiResourceId)`);
  if (!DB_IDENTIFIER.test(target.to))
    throw new RestoreError(`${target.to} is not an RDS instance identifier`);
  if (target.to === target.from)
    throw new RestoreError(
      `the restored instance must have an identifier of its own, not ${target.from}: restore to a new identifier (docs/runbooks.md)`,
    );
  if (![3, 4].includes(original.version))
    throw new RestoreError(
      `this is not a pulumi stack export of version 3 or 4 (version ${original.version})`,
    );
  const exported = structuredClone(original);
  const pending = exported.deployment.pending_operations ?? [];
  if (pending.length > 0)
    throw new RestoreError(
      `the stack has ${pending.length} pending operation(s) from an interrupted update: finish them first (pulumi refresh), then export again`,
    );
  const instances = (exported.deployment.resources ?? []).filter(
    (r) =>
      r.type === RDS_INSTANCE &&
      r.custom !== false &&
      !r.delete &&
      (r.outputs?.identifier === target.from || r.id === target.resourceId),
  );
  if (instances.length === 0)
    throw new RestoreError(
      `the stack's state has no RDS instance ${target.from} (nor one with id ${target.resourceId}): is this the right stack?`,
    );
  if (instances.length > 1)
    throw new RestoreError(
      `the stack's state has ${instances.length} RDS instances named ${target.from} or with id ${target.resourceId}: ${instances.map((r) => r.urn).join(", ")}`,
    );
  const r = instances[0]!;
  const previousId = r.id ?? "";
  const outputs = (r.outputs ??= {});
  const inputs = (r.inputs ??= {});
  const already =
    r.id === target.resourceId &&
    outputs.id === target.resourceId &&
    outputs.resourceId === target.resourceId &&
    inputs.identifier === target.to;
  if (already) return { exported: original, urn: r.urn, previousId, changed: false };
  r.id = target.resourceId;
  outputs.id = target.resourceId;
  outputs.resourceId = target.resourceId;
  outputs.identifier = target.to;
  inputs.identifier = target.to;
  delete outputs[RAW_STATE_DELTA];
  return { exported, urn: r.urn, previousId, changed: true };
}

/**
 * What `pulumi stack import` would refuse (pkg/cmd/pulumi/stack/stack_import.go and
 * deploy/snapshot.go VerifyIntegrity): checked before a file is written, so the helper never hands
 * over one that import rejects.
 */
export function importProblems(exported: StackExport, stack: string): string[] {
  const problems: string[] = [];
  const m = exported.deployment.manifest;
  if (m?.version !== undefined && m.magic !== createHash("sha256").update(m.version).digest("hex"))
    problems.push("manifest: magic cookie mismatch");
  const seen = new Set<string>();
  const live = new Set<string>();
  const refers = (r: ExportedResource, what: string, urn: string | undefined) => {
    if (urn !== undefined && !seen.has(urn))
      problems.push(`${r.urn}: ${what} ${urn} is not earlier in the state`);
  };
  for (const r of exported.deployment.resources ?? []) {
    if (!r.urn || !r.type) {
      problems.push(`a resource without urn or type: ${JSON.stringify(r).slice(0, 80)}`);
      continue;
    }
    const urnStack = /^urn:pulumi:([^:]+)::/.exec(r.urn)?.[1];
    if (urnStack !== stack) problems.push(`${r.urn}: belongs to stack ${urnStack}, not ${stack}`);
    if (r.custom === false && r.id) problems.push(`${r.urn}: a component resource with an id`);
    if (!r.delete) {
      if (live.has(r.urn)) problems.push(`${r.urn}: appears twice`);
      live.add(r.urn);
    }
    refers(r, "parent", r.parent);
    if (r.provider) refers(r, "provider", r.provider.slice(0, r.provider.lastIndexOf("::")));
    for (const d of r.dependencies ?? []) refers(r, "dependency", d);
    for (const [key, deps] of Object.entries(r.propertyDependencies ?? {}))
      for (const d of deps) refers(r, `dependency of ${key}`, d);
    refers(r, "deletedWith", r.deletedWith);
    seen.add(r.urn);
  }
  return problems;
}
