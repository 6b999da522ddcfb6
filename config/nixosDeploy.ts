/**
 * The deploy settings of a site applied by the NixOS host deployer (components/nixosHost): the
 * rollback window and the limits inside it, checked against the deploy's budget
 * (config/deployBudget.ts) with every number in the error. Used by attic-infra:vps; the office block
 * declares the same keys with the same defaults.
 */
import { z } from "zod";
import { windowShortfall } from "./deployBudget";
import { int, loose, show } from "./fields";

export const nixosDeployFields = {
  /** Seconds after which an unconfirmed deploy rolls itself back; must cover the deploy's budget. */
  rollbackTimeoutSeconds: int("seconds", 60, 3600).default(180),
  /** Limit for the activation (`switch-to-configuration test`), inside the rollback window. */
  activationTimeoutSeconds: int("seconds", 10, 3600).default(90),
  /** How long atticd may take to answer after the activation, inside the rollback window. */
  healthTimeoutSeconds: int("seconds", 5, 600).default(30),
  /** Limit for `nixos-rebuild build`, which runs before the rollback window opens. */
  buildTimeoutSeconds: int("seconds", 60, 86400).default(1800),
  /** `<flake dir>#<host>` for flake-based hosts. Unset: /etc/nixos/configuration.nix. */
  flake: z
    .string()
    .regex(/^\/[^#\s"'$`\\]+#[A-Za-z0-9._-]+$/, {
      error: (i) => `${show(i.input)} is not <absolute flake dir>#<host name>`,
    })
    .optional(),
};

/** A cross-field refinement (run it with `evenIfInvalid`): the window covers the deploy's budget. */
export function requireDeployBudget(raw: unknown, ctx: z.RefinementCtx): void {
  const o = loose(raw);
  const num = (v: unknown, d: number) => (typeof v === "number" ? v : d);
  const shortfall = windowShortfall(num(o.rollbackTimeoutSeconds, 180), {
    activationSeconds: num(o.activationTimeoutSeconds, 90),
    healthSeconds: num(o.healthTimeoutSeconds, 30),
  });
  if (shortfall)
    ctx.addIssue({
      code: "custom",
      path: ["rollbackTimeoutSeconds"],
      message: `${shortfall}; raise it, or lower activationTimeoutSeconds / healthTimeoutSeconds`,
    });
}
