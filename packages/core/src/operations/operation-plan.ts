import type { OperationKind, ServerState } from '../db/schema.js';

/**
 * The steps of each operation, in order. Every step is idempotent. The
 * network is applied before a VM starts, so its firewall rules are in place
 * from its first packet. start applies it too, because after a host's reboot
 * the saved rules may not have loaded. Rebuild gives the server a new
 * WireGuard key.
 */
export const OPERATION_STEPS: Record<OperationKind, readonly string[]> = {
  create: ['place-image', 'create-disk', 'reserve-address', 'write-tunnel-key', 'apply-network', 'define-domain', 'start-domain'],
  start: ['apply-network', 'start-domain'],
  stop: ['stop-domain'],
  suspend: ['stop-domain', 'apply-network'],
  resume: ['apply-network', 'start-domain'],
  rebuild: [
    'force-stop-domain',
    'undefine-domain',
    'remove-disk',
    'place-image',
    'create-disk',
    'reserve-address',
    'write-tunnel-key',
    'apply-network',
    'define-domain',
    'start-domain',
  ],
  destroy: ['force-stop-domain', 'undefine-domain', 'remove-disk', 'remove-reservation', 'apply-network', 'remove-tunnel-key', 'release-address'],
};

interface Transition {
  /** States the server may be in for the operation to start. */
  from: readonly ServerState[];
  /** State while the operation runs; absent keeps the current state. */
  during?: ServerState;
  /** State after success. */
  after: ServerState;
}

const LIVE: readonly ServerState[] = ['provisioning', 'running', 'stopped', 'suspended', 'rebuilding', 'failed'];

export const TRANSITIONS: Record<OperationKind, Transition> = {
  create: { from: ['provisioning', 'failed'], during: 'provisioning', after: 'running' },
  start: { from: ['stopped', 'running'], after: 'running' },
  stop: { from: ['running', 'stopped'], after: 'stopped' },
  suspend: { from: ['running', 'stopped', 'suspended'], after: 'suspended' },
  resume: { from: ['suspended', 'running'], after: 'running' },
  rebuild: { from: LIVE, during: 'rebuilding', after: 'running' },
  destroy: { from: [...LIVE, 'destroying'], during: 'destroying', after: 'destroyed' },
};

/** Operations that may replace an unfinished operation of another kind. */
export const SUPERSEDING: ReadonlySet<OperationKind> = new Set(['rebuild', 'destroy']);
