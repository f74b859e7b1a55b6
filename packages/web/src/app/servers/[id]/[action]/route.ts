import { queueServerRequest } from '@vome/core';
import { now } from '../../../../lib/clock';
import { crossSiteRejected, errorResponse, handleAction, isCrossSite } from '../../../../lib/guard';
import { getPortal } from '../../../../lib/portal';

const ACTIONS = ['start', 'stop', 'restart'] as const;
type ServerAction = (typeof ACTIONS)[number];

const NOTICES: Record<ServerAction, string> = {
  start: 'Your server is starting.',
  stop: 'Your server is stopping.',
  restart: 'Your server is restarting.',
};

/**
 * Queues start, stop or restart of a server for the worker. Core checks
 * that the actor owns the server and is entitled, before queueing and again
 * when the worker runs it.
 */
export async function POST(request: Request, context: { params: Promise<{ id: string; action: string }> }): Promise<Response> {
  const { id, action } = await context.params;
  if (!(ACTIONS as readonly string[]).includes(action)) {
    // The path is not echoed: a crafted link must not put words on a portal page.
    if (isCrossSite(request, await getPortal())) {
      return crossSiteRejected(request);
    }
    return errorResponse(request, 404, 'not_found', 'There is no such server action: use start, stop or restart.');
  }
  const kind = action as ServerAction;
  return handleAction(request, 'api', async ({ portal, user }) => {
    const queued = await queueServerRequest(portal.db, user.actor, id, kind, now());
    portal.logger.info({ request: queued.id, server: id, kind, actor: `${user.actor.kind}:${user.actor.id}` }, 'server action queued');
    return { status: 202, body: { request: { id: queued.id, kind, state: queued.state } }, redirectTo: `/servers/${id}`, notice: NOTICES[kind] };
  });
}
