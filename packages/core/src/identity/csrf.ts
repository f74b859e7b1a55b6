import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Computes an HMAC-SHA256 tag of a value for one purpose under the session
 * secret, base64url. The purpose keeps a tag made for one use from passing
 * as another.
 */
export function hmacTag(secret: string, purpose: string, value: string): string {
  return createHmac('sha256', secret).update(`vome-${purpose}:${value}`).digest('base64url');
}

/** Checks a submitted tag against the expected one, in constant time. */
export function isValidHmacTag(secret: string, purpose: string, value: string, submitted: string | null | undefined): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0) {
    return false;
  }
  const expected = Buffer.from(hmacTag(secret, purpose, value));
  const submittedBytes = Buffer.from(submitted);
  return submittedBytes.length === expected.length && timingSafeEqual(submittedBytes, expected);
}

/**
 * Derives the CSRF token of a portal session: an HMAC of the session id
 * under the session secret. A token is valid for its own session only, so a
 * token taken from one session is rejected in another, and it needs no
 * storage.
 */
export function csrfTokenFor(secret: string, sessionId: string): string {
  return hmacTag(secret, 'csrf', sessionId);
}

/** Checks a submitted CSRF token against the session's, in constant time. */
export function isValidCsrfToken(secret: string, sessionId: string, submitted: string | null | undefined): boolean {
  return isValidHmacTag(secret, 'csrf', sessionId, submitted);
}
