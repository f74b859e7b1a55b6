import { z } from 'zod';

/** The fields of GitHub's `GET /user` that sign-in reads. */
export interface GitHubProfile {
  id: number;
  login: string;
  name: string | null;
  /** The public profile email; null when the user keeps it private. */
  email: string | null;
  /** ISO 8601; missing when GitHub did not send it. */
  created_at?: string | null;
}

/** One entry of GitHub's `GET /user/emails`. */
export interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility: string | null;
}

/**
 * The data sign-in received from GitHub. `emails` is undefined when the emails
 * call failed or returned something unreadable.
 */
export interface GitHubLookup {
  profile: GitHubProfile | undefined;
  emails: GitHubEmail[] | undefined;
}

/** The account facts vome keeps from a GitHub sign-in, and nothing more. */
export interface GitHubIdentity {
  githubId: number;
  login: string;
  displayName: string;
  githubCreatedAt: Date;
  email: string;
}

export type SignInRefusal =
  | { reason: 'profile_unreadable' }
  | { reason: 'emails_unreadable' }
  | { reason: 'no_verified_primary_email' }
  | { reason: 'creation_date_missing' }
  | { reason: 'account_too_new'; eligibleAt: Date };

export type SignInDecision = { allowed: true; identity: GitHubIdentity } | ({ allowed: false } & SignInRefusal);

const profileSchema = z.object({
  id: z.number().int().positive(),
  login: z.string().min(1).max(39),
  name: z.string().nullable().optional(),
  email: z.string().nullable().optional(),
  created_at: z.string().nullable().optional(),
});

const emailsSchema = z.array(
  z.object({
    email: z.string(),
    primary: z.boolean(),
    verified: z.boolean(),
    visibility: z.string().nullable().optional(),
  }),
);

/**
 * Decides whether a GitHub account may sign in. It fails closed: a missing
 * or unreadable profile, emails list or creation date refuses sign-in.
 *
 * The email must be the account's primary address and verified. It is taken
 * from the emails list even when the profile shows a public address, because
 * a public address need not be the primary one.
 *
 * The account must be at least `minAgeMs` old at `now`; `eligibleAt` is the
 * first instant at which it is.
 */
export function decideGitHubSignIn(lookup: GitHubLookup, now: Date, minAgeMs: number): SignInDecision {
  const profile = profileSchema.safeParse(lookup.profile);
  if (!profile.success) {
    return { allowed: false, reason: 'profile_unreadable' };
  }
  const emails = emailsSchema.safeParse(lookup.emails);
  if (!emails.success) {
    return { allowed: false, reason: 'emails_unreadable' };
  }
  const primary = emails.data.find((entry) => entry.primary && entry.verified);
  if (!primary || !z.email().safeParse(primary.email).success) {
    return { allowed: false, reason: 'no_verified_primary_email' };
  }

  const createdAt = parseGitHubTime(profile.data.created_at);
  if (!createdAt) {
    return { allowed: false, reason: 'creation_date_missing' };
  }
  const eligibleAt = new Date(createdAt.getTime() + minAgeMs);
  if (now < eligibleAt) {
    return { allowed: false, reason: 'account_too_new', eligibleAt };
  }

  const login = profile.data.login;
  const name = profile.data.name?.trim();
  return {
    allowed: true,
    identity: {
      githubId: profile.data.id,
      login,
      displayName: name && name.length > 0 ? name.slice(0, 200) : login,
      githubCreatedAt: createdAt,
      email: primary.email,
    },
  };
}

/** Parses GitHub's `YYYY-MM-DDTHH:MM:SSZ` timestamps; anything else is undefined. */
function parseGitHubTime(value: string | null | undefined): Date | undefined {
  if (!value || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value)) {
    return undefined;
  }
  const parsed = new Date(value);
  // Date rolls an impossible day over (February 30 becomes March 2), so the
  // parsed date must still show the calendar date that was sent.
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== value.slice(0, 10)) {
    return undefined;
  }
  return parsed;
}

/** Describes a refusal in the sentence the sign-in page shows. */
export function describeSignInRefusal(refusal: SignInRefusal): string {
  switch (refusal.reason) {
    case 'profile_unreadable':
      return 'GitHub did not return your profile, so we could not check your account. Please try again later.';
    case 'emails_unreadable':
      return 'GitHub did not return your email addresses, so we could not check that your primary email is verified. Please try again later.';
    case 'no_verified_primary_email':
      return 'Your GitHub account has no verified primary email address. Verify your primary email on GitHub, then sign in again.';
    case 'creation_date_missing':
      return 'GitHub did not tell us when your account was created, so we could not check its age. Please try again later.';
    case 'account_too_new':
      return `Your GitHub account is too new to sign up. You can sign in from ${refusal.eligibleAt.toISOString().replace('.000Z', 'Z')}.`;
  }
}

/**
 * Fetches the profile and the email list with a user's access token.
 * Failures become undefined fields, which `decideGitHubSignIn` refuses.
 */
export async function lookUpGitHubAccount(apiUrl: string, accessToken: string, fetchImpl: typeof fetch = fetch): Promise<GitHubLookup> {
  const headers = {
    Accept: 'application/vnd.github+json',
    Authorization: `Bearer ${accessToken}`,
    'User-Agent': 'vome-portal',
    'X-GitHub-Api-Version': '2022-11-28',
  };
  const readJson = async (path: string): Promise<unknown> => {
    try {
      const response = await fetchImpl(`${apiUrl.replace(/\/$/, '')}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
      return response.ok ? await response.json() : undefined;
    } catch {
      return undefined;
    }
  };
  const [profile, emails] = await Promise.all([readJson('/user'), readJson('/user/emails')]);
  return { profile: profile as GitHubProfile | undefined, emails: emails as GitHubEmail[] | undefined };
}
