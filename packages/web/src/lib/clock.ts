/**
 * Returns the portal's current time. Every expiry, age and entitlement check reads
 * it, never the database's clock, so that the tests can move it.
 */
export function now(): Date {
  return new Date();
}
