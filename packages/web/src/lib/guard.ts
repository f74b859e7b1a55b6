import { ConflictError, ForbiddenError, InvalidInputError, isValidCsrfToken, NotFoundError, type RateLimitedAction, ServerBusyError, VomeError } from '@vome/core';
import { SESSION_COOKIE } from './auth-options';
import { clientAddressOf } from './client-address';
import { flashCookie } from './flash';
import { getPortal, type Portal } from './portal';
import { type PortalUser, userFromCookie } from './session';

/** Context of a state-changing handler, given once every check has passed. */
export interface ActionContext {
  portal: Portal;
  user: PortalUser;
  fields: URLSearchParams;
  clientAddress: string;
}

/** A handler's success: a JSON body and status for API clients, a page and notice for browsers. */
export interface ActionResult {
  status: number;
  body: Record<string, unknown>;
  redirectTo: string;
  notice: string;
}

const MAX_BODY_BYTES = 16_384;

function wantsHtml(request: Request): boolean {
  return (request.headers.get('accept') ?? '').includes('text/html');
}

/**
 * Returns a cookie's value, or undefined when it is missing or sent more
 * than once: two cookies of one name mean one was planted, and Next.js
 * pages and this code would otherwise not pick the same one.
 */
function cookieValue(request: Request, name: string): string | undefined {
  const values: string[] = [];
  for (const part of (request.headers.get('cookie') ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) {
      values.push(rest.join('='));
    }
  }
  return values.length === 1 ? values[0] : undefined;
}

function htmlPage(status: number, title: string, message: string, extraHeaders: Record<string, string> = {}): Response {
  const escape = (text: string) => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)} – vome</title></head><body><main><h1>${escape(title)}</h1><p role="alert">${escape(message)}</p><p><a href="/dashboard">Back to your dashboard</a></p></main></body></html>`;
  return new Response(body, { status, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...extraHeaders } });
}

/** Returns an error in the format the client requested: an HTML page or JSON. */
export function errorResponse(request: Request, status: number, code: string, message: string, extraHeaders: Record<string, string> = {}): Response {
  if (wantsHtml(request)) {
    let title = 'Request refused';
    if (status === 429) {
      title = 'Too many requests';
    } else if (status === 401) {
      title = 'Please sign in';
    }
    return htmlPage(status, title, message, extraHeaders);
  }
  return Response.json({ error: { code, message } }, { status, headers: { 'cache-control': 'no-store', ...extraHeaders } });
}

/** Returns the 403 for a request that another site's page sent. */
export function crossSiteRejected(request: Request): Response {
  return errorResponse(request, 403, 'cross_site', 'This request came from another site, so it was rejected.');
}

/** Returns 429 with Retry-After in whole seconds; `what` names what there were too many of. */
export function tooManyRequests(request: Request, retryAfterSeconds: number, what = 'requests'): Response {
  return errorResponse(request, 429, 'rate_limited', `Too many ${what}. Try again in ${retryAfterSeconds} seconds.`, { 'retry-after': String(retryAfterSeconds) });
}

/** Maps core's errors to HTTP statuses; anything else is a 500 that is logged. */
function statusOf(error: VomeError): number {
  if (error instanceof ForbiddenError) {
    return 403;
  }
  if (error instanceof NotFoundError) {
    return 404;
  }
  if (error instanceof ConflictError || error instanceof ServerBusyError) {
    return 409;
  }
  if (error instanceof InvalidInputError) {
    return 400;
  }
  return 422;
}

async function readFields(request: Request): Promise<URLSearchParams | undefined> {
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) {
    return undefined;
  }
  if ((request.headers.get('content-type') ?? '').includes('application/json')) {
    try {
      const parsed = JSON.parse(text === '' ? '{}' : text) as Record<string, unknown>;
      return new URLSearchParams(Object.entries(parsed).map(([key, value]) => [key, String(value)]));
    } catch {
      return undefined;
    }
  }
  return new URLSearchParams(text);
}

/** Reports whether another site's page sent the request, as the browser's Origin or Sec-Fetch-Site header shows. */
export function isCrossSite(request: Request, portal: Portal): boolean {
  const origin = request.headers.get('origin');
  if (origin !== null && origin !== portal.config.portalUrl) {
    return true;
  }
  return request.headers.get('sec-fetch-site') === 'cross-site';
}

/**
 * Runs a state-changing request once these checks pass, in order: a
 * same-origin check, a live session (401), and a valid CSRF token of that
 * session in the `csrf` field or the `X-CSRF-Token` header (403). Then the
 * rate limit, keyed on the client address and the account, must allow it
 * (429 with Retry-After). Core then checks
 * ownership and entitlement itself. A refused request changes nothing.
 */
export async function handleAction(request: Request, rateLimit: RateLimitedAction, act: (context: ActionContext) => Promise<ActionResult>): Promise<Response> {
  const portal = await getPortal();
  const clientAddress = clientAddressOf(request.headers, portal);
  if (isCrossSite(request, portal)) {
    return crossSiteRejected(request);
  }
  const user = await userFromCookie(portal, cookieValue(request, SESSION_COOKIE), clientAddress);
  if (!user) {
    if (wantsHtml(request)) {
      return new Response(null, { status: 303, headers: { location: `${portal.config.portalUrl}/signin` } });
    }
    return errorResponse(request, 401, 'unauthenticated', 'Sign in first.');
  }
  const fields = await readFields(request);
  if (!fields) {
    return errorResponse(request, 400, 'invalid_body', 'The request body is too large or not valid form data or JSON.');
  }
  const submitted = fields.get('csrf') ?? request.headers.get('x-csrf-token');
  if (!isValidCsrfToken(portal.config.sessionSecret, user.session.id, submitted)) {
    portal.logger.warn({ account: user.account.id, clientAddress, path: new URL(request.url).pathname }, 'CSRF token missing or invalid');
    return errorResponse(request, 403, 'invalid_csrf_token', 'This form has expired or did not come from this portal. Reload the page and try again.');
  }
  const limit = await portal.limits.consume(rateLimit, clientAddress, user.account.id);
  if (!limit.allowed) {
    return tooManyRequests(request, limit.retryAfterSeconds);
  }

  try {
    const result = await act({ portal, user, fields, clientAddress });
    if (wantsHtml(request)) {
      return new Response(null, { status: 303, headers: { location: `${portal.config.portalUrl}${result.redirectTo}`, 'set-cookie': flashCookie({ kind: 'notice', message: result.notice }) } });
    }
    return Response.json(result.body, { status: result.status, headers: { 'cache-control': 'no-store' } });
  } catch (error) {
    if (!(error instanceof VomeError)) {
      portal.logger.error({ err: error, account: user.account.id, path: new URL(request.url).pathname }, 'portal action failed');
      return errorResponse(request, 500, 'internal_error', 'Something went wrong on our side. Please try again later.');
    }
    const status = statusOf(error);
    if (wantsHtml(request)) {
      const back = request.headers.get('referer');
      const redirectTo = back?.startsWith(`${portal.config.portalUrl}/`) ? back : `${portal.config.portalUrl}/dashboard`;
      return new Response(null, { status: 303, headers: { location: redirectTo, 'set-cookie': flashCookie({ kind: 'error', message: error.message }) } });
    }
    return Response.json({ error: { code: error.code, message: error.message } }, { status, headers: { 'cache-control': 'no-store' } });
  }
}

/**
 * Runs a read-only API request after a live session (401) and the API rate
 * limit (429) have passed. Core's errors map to statuses as for actions.
 */
export async function handleApiRead(request: Request, read: (context: Omit<ActionContext, 'fields'>) => Promise<unknown>): Promise<Response> {
  const portal = await getPortal();
  const clientAddress = clientAddressOf(request.headers, portal);
  const user = await userFromCookie(portal, cookieValue(request, SESSION_COOKIE), clientAddress);
  const limit = await portal.limits.consume('api', clientAddress, user?.account.id);
  if (!limit.allowed) {
    return tooManyRequests(request, limit.retryAfterSeconds);
  }
  if (!user) {
    return errorResponse(request, 401, 'unauthenticated', 'Sign in first.');
  }
  try {
    return Response.json(await read({ portal, user, clientAddress }), { headers: { 'cache-control': 'no-store' } });
  } catch (error) {
    if (error instanceof VomeError) {
      return Response.json({ error: { code: error.code, message: error.message } }, { status: statusOf(error), headers: { 'cache-control': 'no-store' } });
    }
    portal.logger.error({ err: error, account: user.account.id }, 'portal read failed');
    return errorResponse(request, 500, 'internal_error', 'Something went wrong on our side. Please try again later.');
  }
}
