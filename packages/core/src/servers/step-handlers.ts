import { placeImage } from '../images/images.js';
import { applyNetworkForOperation } from '../network/network-apply.js';
import { rekeyTunnel, removeTunnelKey } from '../network/tunnel-keys.js';
import { TRANSITIONS } from '../operations/operation-plan.js';
import type { StepHandler } from '../operations/run-operation.js';
import {
  createDisk,
  defineDomain,
  removeReservation,
  removeServerFiles,
  startDomain,
  stopDomain,
  undefineDomain,
  writeReservation,
} from './host-steps.js';

/** The handler of every step name that server operations use. */
export const STEP_HANDLERS: Record<string, StepHandler> = {
  'place-image': async (step) => {
    await placeImage(step, step.runner, step.host, step.image);
  },
  'create-disk': async (step) => {
    const placement = await step.db
      .selectFrom('image_placements')
      .select('path')
      .where('image_id', '=', step.image.id)
      .where('host_id', '=', step.host.id)
      .executeTakeFirstOrThrow();
    await createDisk(step.runner, step.host, step.server, step.image, placement.path);
  },
  'reserve-address': (step) => writeReservation(step.runner, step.host, step.server),
  'define-domain': (step) => defineDomain(step.runner, step.host, step.server, step.image),
  'start-domain': (step) => startDomain(step.runner, step.server),
  'stop-domain': (step) => stopDomain(step.runner, step.server, step.config.shutdownGraceSeconds),
  'force-stop-domain': (step) => stopDomain(step.runner, step.server, 0),
  'undefine-domain': (step) => undefineDomain(step.runner, step.server),
  'remove-disk': (step) => removeServerFiles(step.runner, step.host, step.server),
  'remove-reservation': (step) => removeReservation(step.runner, step.host, step.server),
  'write-tunnel-key': (step) => rekeyTunnel(step.db, step.runner, step.host, step.server),
  // The network is applied for the state the operation leads to: a suspended
  // or destroyed server has no rules, map entry or tunnel.
  'apply-network': (step) => applyNetworkForOperation(step.db, step.runner, step.host, { serverId: step.server.id, state: TRANSITIONS[step.kind].after }),
  'remove-tunnel-key': (step) => removeTunnelKey(step.db, step.runner, step.host, step.server),
  'release-address': async (step) => {
    await step.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('address_allocations').where('server_id', '=', step.server.id).execute();
      await trx.deleteFrom('tunnel_peers').where('server_id', '=', step.server.id).execute();
      await trx.updateTable('servers').set({ tunnel_slot: null, tunnel_public_key: null }).where('id', '=', step.server.id).execute();
    });
  },
};

