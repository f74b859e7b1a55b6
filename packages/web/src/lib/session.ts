import { type Account, type Actor, csrfTokenFor, findLivePortalSession, type PortalSession } from '@vome/core';
import { decode } from 'next-auth/jwt';
import { cookies, headers } from 'next/headers';
import { redirect } from 'next/navigation';
import { cache } from 'react';
import { SESSION_COOKIE, type SessionToken } from './auth-options';
import { clientAddressOf } from './client-address';
import { now } from './clock';
import { getPortal, type Portal } from './portal';

/** A signed-in person, as the portal resolves them for one request. */
export interface PortalUser {
  account: Account;
  session: PortalSession;
  actor: Actor;
  isAdmin: boolean;
  /** The CSRF token of this session, for hidden form fields. */
  csrfToken: string;
}

/**
 * Reads a session cookie: the token must decode under the session secret
 * and name a live session row (not ended, not past its 12 hours, of the
 * account's current session version).
 */
export async function userFromCookie(portal: Portal, cookieValue: string | undefined, clientAddress: string): Promise<PortalUser | undefined> {
  if (!cookieValue) {
    return undefined;
  }
  let token: SessionToken | null = null;
  try {
    token = (await decode({ token: cookieValue, secret: portal.config.sessionSecret })) as SessionToken | null;
  } catch {
    return undefined;
  }
  if (!token?.sid) {
    return undefined;
  }
  const live = await findLivePortalSession(portal.db, token.sid, now());
  if (!live) {
    return undefined;
  }
  const isAdmin = live.account.github_id !== null && portal.config.adminGitHubIds.has(Number(live.account.github_id));
  const actor: Actor = isAdmin
    ? { kind: 'admin', id: `github:${live.account.github_login}`, sourceAddress: clientAddress }
    : { kind: 'customer', id: live.account.id, sourceAddress: clientAddress };
  return { ...live, actor, isAdmin, csrfToken: csrfTokenFor(portal.config.sessionSecret, live.session.id) };
}

/**
 * Returns the signed-in user of the page being rendered, if any. React's
 * `cache` makes the layout and the page share one lookup per request.
 */
export const currentUser = cache(async (): Promise<PortalUser | undefined> => {
  // Two session cookies mean one was planted: neither is trusted.
  const sent = (await cookies()).getAll(SESSION_COOKIE);
  const cookie = sent.length === 1 ? sent[0]?.value : undefined;
  if (!cookie) {
    return undefined;
  }
  const portal = await getPortal();
  return userFromCookie(portal, cookie, clientAddressOf(await headers(), portal));
});

/** Returns the signed-in user, or sends the browser to the sign-in page. */
export async function requireUser(): Promise<PortalUser> {
  const user = await currentUser();
  if (!user) {
    redirect('/signin');
  }
  return user;
}
