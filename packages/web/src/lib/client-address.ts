import { resolveClientAddress } from '@vome/core';
import type { Portal } from './portal';

/**
 * Returns the client address of a request. `x-vome-peer-address` is set by
 * server.mjs from the socket, overwriting anything a client sent.
 */
export function clientAddressOf(headers: Headers, portal: Portal): string {
  const peer = headers.get('x-vome-peer-address') ?? '';
  if (peer === '') {
    // Only possible when Next.js runs without server.mjs.
    return 'unknown';
  }
  return resolveClientAddress(peer, headers.get('x-forwarded-for'), portal.config.trustedProxies);
}
