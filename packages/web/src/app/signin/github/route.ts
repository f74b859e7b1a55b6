import { authOptions } from '../../../lib/auth-options';
import { clientAddressOf } from '../../../lib/client-address';
import { crossSiteRejected, errorResponse, isCrossSite, tooManyRequests } from '../../../lib/guard';
import { callNextAuth, toResponse } from '../../../lib/next-auth-call';
import { getPortal } from '../../../lib/portal';

const CSRF_COOKIE = '__Host-next-auth.csrf-token';

/**
 * Starts sign-in with GitHub from the sign-in page's form. next-auth's own
 * CSRF check on starting sign-in needs a token from a cookie the page
 * cannot set, so this handler fetches the token and posts it in one go. The
 * protection that matters, OAuth's `state` bound to a cookie, is next-auth's
 * and is checked on the callback. A form from another site is refused.
 */
export async function POST(request: Request): Promise<Response> {
  const portal = await getPortal();
  if (isCrossSite(request, portal)) {
    return crossSiteRejected(request);
  }
  const clientAddress = clientAddressOf(request.headers, portal);
  const limit = await portal.limits.consume('sign-in', clientAddress);
  if (!limit.allowed) {
    return tooManyRequests(request, limit.retryAfterSeconds, 'sign-in attempts');
  }
  const options = authOptions(portal, clientAddress);
  const csrf = await callNextAuth(options, { path: ['csrf'], method: 'GET' });
  const csrfCookie = csrf.setCookies.find((cookie) => cookie.startsWith(`${CSRF_COOKIE}=`));
  const csrfToken = (csrf.body as { csrfToken?: string } | undefined)?.csrfToken;
  if (!csrfCookie || !csrfToken) {
    portal.logger.error({ clientAddress }, 'next-auth returned no CSRF token');
    return errorResponse(request, 500, 'internal_error', 'Sign-in could not start. Please try again later.');
  }
  const csrfValue = decodeURIComponent(csrfCookie.slice(CSRF_COOKIE.length + 1).split(';')[0] ?? '');
  const start = await callNextAuth(options, {
    path: ['signin', 'github'],
    method: 'POST',
    cookies: { [CSRF_COOKIE]: csrfValue },
    body: { csrfToken, callbackUrl: `${portal.config.portalUrl}/dashboard` },
  });
  start.setCookies.unshift(csrfCookie);
  return toResponse(start);
}
