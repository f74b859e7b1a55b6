import { placeImage } from '../images/images.js';
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
  'release-address': async (step) => {
    await step.db.deleteFrom('address_allocations').where('server_id', '=', step.server.id).execute();
  },
};

