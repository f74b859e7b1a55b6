import { getServerForActor } from '@vome/core';
import { handleApiRead } from '../../../../lib/guard';

/** Returns one server with its recent operations and requests, after core's ownership check. */
export async function GET(request: Request, context: { params: Promise<{ id: string }> }): Promise<Response> {
  const { id } = await context.params;
  return handleApiRead(request, async ({ portal, user }) => ({ server: await getServerForActor(portal.db, user.actor, id) }));
}
