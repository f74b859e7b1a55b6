import { endPortalSession } from '@vome/core';
import { SESSION_COOKIE } from '../../../lib/auth-options';
import { now } from '../../../lib/clock';
import { handleAction } from '../../../lib/guard';

/** Ends this session and removes its cookie. */
export async function POST(request: Request): Promise<Response> {
  const response = await handleAction(request, 'api', async ({ portal, user }) => {
    await endPortalSession(portal.db, user.account.id, user.session.id, now());
    portal.logger.info({ account: user.account.id, session: user.session.id }, 'signed out');
    return { status: 200, body: { signedOut: true }, redirectTo: '/signin', notice: 'You are signed out.' };
  });
  if (response.status < 400) {
    response.headers.append('set-cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax`);
  }
  return response;
}
