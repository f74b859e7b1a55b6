import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Derives the CSRF token of a portal session: an HMAC of the session id
 * under the session secret. A token is valid for its own session only, so a
 * token taken from one session is rejected in another, and it needs no
 * storage.
 */
export function csrfTokenFor(secret: string, sessionId: string): string {
  return createHmac('sha256', secret).update(`vome-csrf:${sessionId}`).digest('base64url');
}

/** Checks a submitted CSRF token against the session's, in constant time. */
export function isValidCsrfToken(secret: string, sessionId: string, submitted: string | null | undefined): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0) {
    return false;
  }
  const expected = Buffer.from(csrfTokenFor(secret, sessionId));
  const given = Buffer.from(submitted);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
