import { authOptions } from '../../../../../lib/auth-options';
import { clientAddressOf } from '../../../../../lib/client-address';
import { tooManyRequests } from '../../../../../lib/guard';
import { callNextAuth, parseCookieHeader, toResponse } from '../../../../../lib/next-auth-call';
import { getPortal } from '../../../../../lib/portal';

/**
 * GitHub sends the browser here after authorisation. next-auth checks the
 * `state` against its cookie, exchanges the code and calls the signIn
 * callback, which decides on the account and starts the session. Counted
 * against the sign-in rate limit of the client's address.
 */
export async function GET(request: Request): Promise<Response> {
  const portal = await getPortal();
  const clientAddress = clientAddressOf(request.headers, portal);
  const limit = await portal.limits.consume('sign-in', clientAddress);
  if (!limit.allowed) {
    return tooManyRequests(request, limit.retryAfterSeconds, 'sign-in attempts');
  }
  const url = new URL(request.url);
  const reply = await callNextAuth(authOptions(portal, clientAddress), {
    path: ['callback', 'github'],
    method: 'GET',
    query: Object.fromEntries(url.searchParams),
    cookies: parseCookieHeader(request.headers.get('cookie')),
  });
  return toResponse(reply);
}
