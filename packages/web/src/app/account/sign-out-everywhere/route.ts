import { endEveryPortalSession } from '@vome/core';
import { SESSION_COOKIE } from '../../../lib/auth-options';
import { now } from '../../../lib/clock';
import { handleAction } from '../../../lib/guard';

/** Ends every session of the account, this one included, on every device. */
export async function POST(request: Request): Promise<Response> {
  const response = await handleAction(request, 'api', async ({ portal, user }) => {
    const ended = await endEveryPortalSession(portal.db, user.actor, user.account.id, now());
    portal.logger.info({ account: user.account.id, sessions: ended }, 'signed out everywhere');
    return { status: 200, body: { sessionsEnded: ended }, redirectTo: '/signin', notice: `You are signed out on every device (${ended} sessions).` };
  });
  if (response.status < 400) {
    response.headers.append('set-cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax`);
  }
  return response;
}
