/**
 * The time budget of a NixOS deploy with a dead-man rollback (components/nixosHost). The rollback
 * window opens when the timer is armed and must outlast everything that happens before the confirm
 * takes the host's deploy lock: the activation, the health check, and dialling a new SSH
 * connection. Once the confirm holds the lock, a firing timer waits for it (no race), so the
 * confirm's own work is not part of the budget.
 */

/** OpenSSH dials the confirm connection this many times, each bounded by ConnectTimeout. */
export const CONFIRM_DIAL_ATTEMPTS = 2;
export const CONFIRM_DIAL_TIMEOUT_SECONDS = 15;
/** Slack for clocks, process start-up and the deploy script's own steps. */
export const BUDGET_MARGIN_SECONDS = 30;

export interface DeployTimes {
  /** Limit for `switch-to-configuration test` (the activation). */
  activationSeconds: number;
  /** How long the new system may take until its health check answers. */
  healthSeconds: number;
}

export interface DeployBudget extends DeployTimes {
  confirmDialSeconds: number;
  marginSeconds: number;
  total: number;
}

export function deployBudget(t: DeployTimes): DeployBudget {
  const confirmDialSeconds = CONFIRM_DIAL_ATTEMPTS * CONFIRM_DIAL_TIMEOUT_SECONDS;
  return {
    ...t,
    confirmDialSeconds,
    marginSeconds: BUDGET_MARGIN_SECONDS,
    total: t.activationSeconds + t.healthSeconds + confirmDialSeconds + BUDGET_MARGIN_SECONDS,
  };
}

/** `undefined` when the window covers the budget, else the reason, with every number. */
export function windowShortfall(windowSeconds: number, t: DeployTimes): string | undefined {
  const b = deployBudget(t);
  if (windowSeconds >= b.total) return undefined;
  return `${windowSeconds} s is shorter than the deploy's budget of ${b.total} s (activation ${b.activationSeconds} + health check ${b.healthSeconds} + confirm dialling ${b.confirmDialSeconds} + margin ${b.marginSeconds})`;
}
