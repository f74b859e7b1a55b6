import { listServersForActor } from '@vome/core';
import { handleApiRead } from '../../../lib/guard';

/** Lists the servers the signed-in person may see. */
export async function GET(request: Request): Promise<Response> {
  return handleApiRead(request, async ({ portal, user }) => ({ servers: await listServersForActor(portal.db, user.actor) }));
}
