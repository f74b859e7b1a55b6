import type { RedemptionCode } from '@vome/core';

/** The JSON shape of a redemption code; the code itself is never stored. */
export interface CodeJson {
  id: string;
  prefix: string;
  plan: string;
  trialDays: number;
  uses: number;
  maxUses: number;
  expiresAt: string;
  revokedAt: string | null;
  state: 'active' | 'used up' | 'expired' | 'revoked';
  createdAt: string;
}

/** Renders a code with its state, as core's codeState computes it. */
export function codeJson(code: RedemptionCode, state: CodeJson['state']): CodeJson {
  return {
    id: code.id,
    prefix: code.prefix,
    plan: code.plan,
    trialDays: code.trial_days,
    uses: code.uses,
    maxUses: code.max_uses,
    expiresAt: code.expires_at.toISOString(),
    revokedAt: code.revoked_at?.toISOString() ?? null,
    state,
    createdAt: code.created_at.toISOString(),
  };
}
