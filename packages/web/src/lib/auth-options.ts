import {
  ConflictError,
  decideGitHubSignIn,
  hmacTag,
  type GitHubLookup,
  lookUpGitHubAccount,
  recordGitHubSignIn,
  SESSION_LIFETIME_MS,
  startPortalSession,
} from '@vome/core';
import type { AuthOptions } from 'next-auth';
import GitHubProvider from 'next-auth/providers/github';
import { now } from './clock';
import type { Portal } from './portal';

/**
 * Name of the session cookie. next-auth's cookies all get the __Host-
 * prefix rather than its default __Secure-. Browsers accept a __Host- cookie only without a
 * Domain attribute, so a sibling subdomain cannot plant a session, state or
 * callback cookie for the portal. Such a subdomain may be a customer's Home
 * Assistant under the same parent domain.
 */
export const SESSION_COOKIE = '__Host-next-auth.session-token';

const HOST_COOKIE = { httpOnly: true, sameSite: 'lax', path: '/', secure: true } as const;

/** Contents of the session token: only the id of the session row. */
export interface SessionToken {
  sid?: string;
}

/**
 * Builds next-auth's options for one request. Cookies are always the
 * secure kind (`useSecureCookies`), so behind nginx, where the portal receives
 * plain HTTP, cookie names and flags are the same as on direct HTTPS.
 */
export function authOptions(portal: Portal, clientAddress: string): AuthOptions {
  const { config, db, logger } = portal;
  // The eligible date is signed, so a crafted link cannot show another date on the portal.
  const refused = (reason: string, eligibleAt?: Date) => {
    if (!eligibleAt) {
      return `${config.portalUrl}/signin?refused=${reason}`;
    }
    const eligible = eligibleAt.toISOString();
    return `${config.portalUrl}/signin?refused=${reason}&eligible=${encodeURIComponent(eligible)}&signature=${hmacTag(config.sessionSecret, 'eligible', eligible)}`;
  };

  return {
    secret: config.sessionSecret,
    useSecureCookies: true,
    cookies: {
      sessionToken: { name: SESSION_COOKIE, options: HOST_COOKIE },
      callbackUrl: { name: '__Host-next-auth.callback-url', options: HOST_COOKIE },
      csrfToken: { name: '__Host-next-auth.csrf-token', options: HOST_COOKIE },
      state: { name: '__Host-next-auth.state', options: { ...HOST_COOKIE, maxAge: 900 } },
      pkceCodeVerifier: { name: '__Host-next-auth.pkce.code_verifier', options: { ...HOST_COOKIE, maxAge: 900 } },
      nonce: { name: '__Host-next-auth.nonce', options: HOST_COOKIE },
    },
    session: { strategy: 'jwt', maxAge: SESSION_LIFETIME_MS / 1000 },
    jwt: { maxAge: SESSION_LIFETIME_MS / 1000 },
    pages: { signIn: '/signin', error: '/signin' },
    providers: [
      GitHubProvider({
        clientId: config.githubClientId,
        clientSecret: config.githubClientSecret,
        checks: ['state'],
        authorization: { url: `${config.githubUrl}/login/oauth/authorize`, params: { scope: 'read:user user:email' } },
        token: `${config.githubUrl}/login/oauth/access_token`,
        userinfo: {
          url: `${config.githubApiUrl}/user`,
          async request({ tokens }) {
            return (await lookUpGitHubAccount(config.githubApiUrl, tokens.access_token ?? '')) as never;
          },
        },
        profile(raw) {
          // `raw` is what userinfo.request returned. next-auth needs an id
          // here; sign-in itself is decided in the signIn callback.
          const lookup = raw as unknown as GitHubLookup;
          return { id: String(lookup.profile?.id ?? 'unreadable'), name: null, email: null, image: null };
        },
      }),
    ],
    callbacks: {
      async signIn({ user, profile }) {
        const decision = decideGitHubSignIn(profile as unknown as GitHubLookup, now(), config.minGitHubAgeMs);
        if (!decision.allowed) {
          logger.warn({ reason: decision.reason, clientAddress }, 'sign-in rejected');
          return refused(decision.reason, decision.reason === 'account_too_new' ? decision.eligibleAt : undefined);
        }
        try {
          const account = await recordGitHubSignIn(db, decision.identity, clientAddress, now());
          const session = await startPortalSession(db, account, clientAddress, now());
          // The same object reaches the jwt callback below as `user`.
          (user as { sessionId?: string }).sessionId = session.id;
          logger.info({ account: account.id, session: session.id, clientAddress }, 'signed in');
          return true;
        } catch (error) {
          if (error instanceof ConflictError) {
            logger.warn({ githubId: decision.identity.githubId, clientAddress }, 'sign-in rejected: login belongs to another GitHub account');
            return refused('login_taken');
          }
          throw error;
        }
      },
      async jwt({ token, user, trigger }) {
        if (trigger === 'signIn' || trigger === 'signUp') {
          // Only the session id: name, email and picture stay out of the cookie.
          return { sid: (user as { sessionId?: string }).sessionId } satisfies SessionToken;
        }
        return token;
      },
      async redirect({ url }) {
        return url.startsWith(`${config.portalUrl}/`) ? url : `${config.portalUrl}/dashboard`;
      },
    },
    logger: {
      error: (code, metadata) => logger.error({ code, error: metadata instanceof Error ? metadata.message : undefined }, 'next-auth error'),
      warn: (code) => logger.warn({ code }, 'next-auth warning'),
      debug: () => undefined,
    },
  };
}
