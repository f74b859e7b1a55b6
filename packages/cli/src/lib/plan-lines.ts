import type { PlanChange } from '@vome/core';

/** Renders plan changes as diff lines: "+ firewall: …" for additions, "- …" for removals. */
export function planLines(changes: PlanChange[]): string[] {
  return changes.map((change) => `${change.action === 'add' ? '+' : '-'} ${change.part}: ${change.item}`);
}
