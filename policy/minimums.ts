/**
 * The floors that both the config schema (config/aws.ts) and the policy pack (policies.ts) enforce:
 * one number each, so that a value config accepts is never refused at `pulumi preview --policy-pack`.
 * Dependency-free: the policy pack loads it from its own directory.
 */

/** Days of RDS automated backups (and so of point-in-time restore); RDS itself allows 0-35. */
export const MIN_BACKUP_RETENTION_DAYS = 7;
