import { describe, expect, it } from 'vitest';
import type { OperationKind, ServerState } from '../../../src/db/schema.js';
import { OPERATION_STEPS, SUPERSEDING, TRANSITIONS } from '../../../src/operations/operation-plan.js';

const KINDS: OperationKind[] = ['create', 'start', 'stop', 'suspend', 'resume', 'rebuild', 'destroy'];
const STATES: ServerState[] = ['provisioning', 'running', 'stopped', 'suspended', 'rebuilding', 'destroying', 'destroyed', 'failed'];

describe('OPERATION_STEPS', () => {
  it('covers exactly the operation kinds', () => {
    expect(Object.keys(OPERATION_STEPS).sort()).toEqual([...KINDS].sort());
  });

  it.each(KINDS)('gives %s at least one step, none repeated', (kind) => {
    const steps = OPERATION_STEPS[kind];
    expect(steps.length).toBeGreaterThan(0);
    expect(new Set(steps).size).toBe(steps.length);
  });

  it.each([
    ['create', ['place-image', 'create-disk', 'reserve-address', 'write-tunnel-key', 'apply-network', 'define-domain', 'start-domain']],
    ['start', ['apply-network', 'start-domain']],
    ['stop', ['stop-domain']],
    ['suspend', ['stop-domain', 'apply-network']],
    ['resume', ['apply-network', 'start-domain']],
    [
      'rebuild',
      [
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
    ],
    ['destroy', ['force-stop-domain', 'undefine-domain', 'remove-disk', 'remove-reservation', 'apply-network', 'remove-tunnel-key', 'release-address']],
  ] as const)('lists the steps of %s', (kind, steps) => {
    expect(OPERATION_STEPS[kind]).toEqual(steps);
  });

  it('applies the network before the domain starts', () => {
    for (const kind of ['create', 'start', 'rebuild', 'resume'] as const) {
      const steps = OPERATION_STEPS[kind];
      expect(steps.indexOf('apply-network')).toBeLessThan(steps.indexOf('start-domain'));
    }
  });

  it('rekeys the tunnel before rebuild applies the network', () => {
    const steps = OPERATION_STEPS.rebuild;
    expect(steps.indexOf('write-tunnel-key')).toBeLessThan(steps.indexOf('apply-network'));
  });

  it('ends destroy by releasing the address', () => {
    expect(OPERATION_STEPS.destroy.at(-1)).toBe('release-address');
  });

  it('stops and undefines the domain before destroy removes its disk', () => {
    const steps = OPERATION_STEPS.destroy;
    expect(steps.indexOf('force-stop-domain')).toBeLessThan(steps.indexOf('undefine-domain'));
    expect(steps.indexOf('undefine-domain')).toBeLessThan(steps.indexOf('remove-disk'));
  });

  it('ends rebuild with the steps of create', () => {
    expect(OPERATION_STEPS.rebuild.slice(-OPERATION_STEPS.create.length)).toEqual(OPERATION_STEPS.create);
  });

  it('does not release the address in a rebuild', () => {
    expect(OPERATION_STEPS.rebuild).not.toContain('release-address');
  });
});

describe('TRANSITIONS', () => {
  it('covers exactly the operation kinds', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...KINDS].sort());
  });

  it.each([
    ['create', 'running'],
    ['start', 'running'],
    ['stop', 'stopped'],
    ['suspend', 'suspended'],
    ['resume', 'running'],
    ['rebuild', 'running'],
    ['destroy', 'destroyed'],
  ] as const)('leaves the server %s after %s', (kind, state) => {
    expect(TRANSITIONS[kind].after).toBe(state);
  });

  it.each([
    ['create', 'provisioning'],
    ['rebuild', 'rebuilding'],
    ['destroy', 'destroying'],
  ] as const)('marks the server while %s runs and accepts that state again, so a re-run can start', (kind, during) => {
    expect(TRANSITIONS[kind].during).toBe(during);
    expect(TRANSITIONS[kind].from).toContain(during);
  });

  it.each(['start', 'stop', 'suspend', 'resume'] as const)('keeps the state while %s runs', (kind) => {
    expect(TRANSITIONS[kind].during).toBeUndefined();
  });

  it.each(KINDS)('does not start %s on a destroyed server', (kind) => {
    expect(TRANSITIONS[kind].from).not.toContain('destroyed');
  });

  it.each(['start', 'stop', 'suspend', 'resume'] as const)('accepts %s on a server already in its end state', (kind) => {
    expect(TRANSITIONS[kind].from).toContain(TRANSITIONS[kind].after);
  });

  it.each(STATES.filter((state) => state !== 'destroyed'))('lets destroy start from %s', (state) => {
    expect(TRANSITIONS.destroy.from).toContain(state);
  });

  it.each(['start', 'stop'] as const)('does not %s a suspended server', (kind) => {
    expect(TRANSITIONS[kind].from).not.toContain('suspended');
  });

  it('lists only known states', () => {
    for (const transition of Object.values(TRANSITIONS)) {
      for (const state of [...transition.from, transition.after, ...(transition.during ? [transition.during] : [])]) {
        expect(STATES).toContain(state);
      }
    }
  });
});

describe('SUPERSEDING', () => {
  it('contains rebuild and destroy only', () => {
    expect([...SUPERSEDING].sort()).toEqual(['destroy', 'rebuild']);
  });
});
