import { describe, expect, it } from 'vitest';
import { decideGitHubSignIn, type GitHubLookup } from '../../../src/identity/github-sign-in.js';

const DAY_MS = 86_400_000;
const MIN_AGE_MS = 30 * DAY_MS;
const CREATED_AT = '2026-01-01T00:00:00Z';
// CREATED_AT plus MIN_AGE_MS: the first instant the account may sign in.
const ELIGIBLE_AT = new Date('2026-01-31T00:00:00.000Z');
const LATER = new Date('2026-06-01T12:00:00Z');

const PROFILE = { id: 101, login: 'mona', name: 'Mona Lisa', email: null, created_at: CREATED_AT };
const PRIMARY = { email: 'mona@example.org', primary: true, verified: true, visibility: 'private' };
const ALLOWED = {
  allowed: true,
  identity: { githubId: 101, login: 'mona', displayName: 'Mona Lisa', githubCreatedAt: new Date(CREATED_AT), email: 'mona@example.org' },
};
const TOO_NEW = { allowed: false, reason: 'account_too_new', eligibleAt: ELIGIBLE_AT };

/** Builds a lookup that is allowed unless a test overrides a field. An override of undefined is kept. */
function lookup(overrides: { profile?: unknown; emails?: unknown } = {}): GitHubLookup {
  return { profile: PROFILE, emails: [PRIMARY], ...overrides } as GitHubLookup;
}

describe('decideGitHubSignIn', () => {
  it('allows an old account with a verified primary email', () => {
    expect(decideGitHubSignIn(lookup(), LATER, MIN_AGE_MS)).toEqual(ALLOWED);
  });

  it.each([
    { case: 'no profile', profile: undefined },
    { case: 'null profile', profile: null },
    { case: 'profile not an object', profile: 'mona' },
    { case: 'missing id', profile: { ...PROFILE, id: undefined } },
    { case: 'id as a string', profile: { ...PROFILE, id: '101' } },
    { case: 'id zero', profile: { ...PROFILE, id: 0 } },
    { case: 'negative id', profile: { ...PROFILE, id: -5 } },
    { case: 'fractional id', profile: { ...PROFILE, id: 101.5 } },
    { case: 'missing login', profile: { ...PROFILE, login: undefined } },
    { case: 'empty login', profile: { ...PROFILE, login: '' } },
    { case: 'login of 40 characters', profile: { ...PROFILE, login: 'm'.repeat(40) } },
    { case: 'name as a number', profile: { ...PROFILE, name: 7 } },
  ])('refuses $case as profile_unreadable', ({ profile }) => {
    expect(decideGitHubSignIn(lookup({ profile }), LATER, MIN_AGE_MS)).toEqual({ allowed: false, reason: 'profile_unreadable' });
  });

  it('checks the profile before the emails', () => {
    expect(decideGitHubSignIn(lookup({ profile: undefined, emails: undefined }), LATER, MIN_AGE_MS)).toEqual({ allowed: false, reason: 'profile_unreadable' });
  });

  it.each([
    { case: 'no emails list', emails: undefined },
    { case: 'null emails list', emails: null },
    { case: 'an object instead of a list', emails: { ...PRIMARY } },
    { case: "GitHub's error body", emails: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' } },
    { case: 'a list of strings', emails: ['mona@example.org'] },
    { case: 'entry without primary', emails: [{ email: 'mona@example.org', verified: true, visibility: null }] },
    { case: 'entry without verified', emails: [{ email: 'mona@example.org', primary: true, visibility: null }] },
    { case: 'primary as a string', emails: [{ ...PRIMARY, primary: 'true' }] },
    { case: 'verified as a number', emails: [{ ...PRIMARY, verified: 1 }] },
    { case: 'email as a number', emails: [{ ...PRIMARY, email: 42 }] },
    { case: 'one bad entry among good ones', emails: [PRIMARY, { email: 'other@example.org', primary: false }] },
  ])('refuses $case as emails_unreadable', ({ emails }) => {
    expect(decideGitHubSignIn(lookup({ emails }), LATER, MIN_AGE_MS)).toEqual({ allowed: false, reason: 'emails_unreadable' });
  });

  it.each([
    { case: 'an empty list', emails: [] },
    { case: 'primary but unverified', emails: [{ ...PRIMARY, verified: false }] },
    { case: 'verified but not primary', emails: [{ ...PRIMARY, primary: false }] },
    {
      case: 'unverified primary and verified other',
      emails: [
        { ...PRIMARY, verified: false },
        { email: 'other@example.org', primary: false, verified: true, visibility: null },
      ],
    },
    { case: 'a malformed primary address', emails: [{ ...PRIMARY, email: 'not-an-email' }] },
    { case: 'an empty primary address', emails: [{ ...PRIMARY, email: '' }] },
  ])('refuses $case as no_verified_primary_email', ({ emails }) => {
    expect(decideGitHubSignIn(lookup({ emails }), LATER, MIN_AGE_MS)).toEqual({ allowed: false, reason: 'no_verified_primary_email' });
  });

  it('ignores a public profile email', () => {
    const emails = [
      { email: 'public@example.org', primary: false, verified: true, visibility: 'public' },
      { email: 'mona@example.org', primary: true, verified: true, visibility: null },
    ];
    const decision = decideGitHubSignIn(lookup({ profile: { ...PROFILE, email: 'public@example.org' }, emails }), LATER, MIN_AGE_MS);
    expect(decision).toMatchObject({ allowed: true, identity: { email: 'mona@example.org' } });
  });

  it('refuses a public email without a primary', () => {
    const emails = [{ email: 'public@example.org', primary: false, verified: true, visibility: 'public' }];
    const decision = decideGitHubSignIn(lookup({ profile: { ...PROFILE, email: 'public@example.org' }, emails }), LATER, MIN_AGE_MS);
    expect(decision).toEqual({ allowed: false, reason: 'no_verified_primary_email' });
  });

  it('accepts emails without visibility', () => {
    const decision = decideGitHubSignIn(lookup({ emails: [{ email: 'mona@example.org', primary: true, verified: true }] }), LATER, MIN_AGE_MS);
    expect(decision.allowed).toBe(true);
  });

  it.each([
    { case: 'missing', createdAt: undefined },
    { case: 'null', createdAt: null },
    { case: 'empty', createdAt: '' },
    { case: 'a date without a time', createdAt: '2026-01-01' },
    { case: 'with an offset instead of Z', createdAt: '2026-01-01T00:00:00+02:00' },
    { case: 'without a zone', createdAt: '2026-01-01T00:00:00' },
    { case: 'with a space separator', createdAt: '2026-01-01 00:00:00Z' },
    { case: 'in epoch seconds', createdAt: '1767225600' },
    { case: 'month 13', createdAt: '2026-13-01T00:00:00Z' },
    { case: 'hour 25', createdAt: '2026-01-01T25:00:00Z' },
    // Date parses February 30 as March 2, so the format check alone lets it through.
    { case: 'February 30', createdAt: '2026-02-30T00:00:00Z' },
  ])('refuses a creation date $case', ({ createdAt }) => {
    const decision = decideGitHubSignIn(lookup({ profile: { ...PROFILE, created_at: createdAt } }), LATER, MIN_AGE_MS);
    expect(decision).toEqual({ allowed: false, reason: 'creation_date_missing' });
  });

  it.each([
    { case: 'at creation', now: new Date(CREATED_AT), decision: TOO_NEW },
    { case: 'one day before eligibleAt', now: new Date(ELIGIBLE_AT.getTime() - DAY_MS), decision: TOO_NEW },
    { case: 'one ms before eligibleAt', now: new Date(ELIGIBLE_AT.getTime() - 1), decision: TOO_NEW },
    { case: 'exactly at eligibleAt', now: ELIGIBLE_AT, decision: ALLOWED },
    { case: 'one ms after eligibleAt', now: new Date(ELIGIBLE_AT.getTime() + 1), decision: ALLOWED },
  ])('decides age $case', ({ now, decision }) => {
    expect(decideGitHubSignIn(lookup(), now, MIN_AGE_MS)).toEqual(decision);
  });

  it('returns eligibleAt to the millisecond', () => {
    const decision = decideGitHubSignIn(lookup({ profile: { ...PROFILE, created_at: '2026-01-01T00:00:00.250Z' } }), ELIGIBLE_AT, MIN_AGE_MS);
    expect(decision).toEqual({ allowed: false, reason: 'account_too_new', eligibleAt: new Date('2026-01-31T00:00:00.250Z') });
  });

  it('allows any account with minimum age zero', () => {
    expect(decideGitHubSignIn(lookup(), new Date(CREATED_AT), 0).allowed).toBe(true);
  });

  it.each([
    { case: 'a name', name: 'Mona Lisa', displayName: 'Mona Lisa' },
    { case: 'a padded name', name: '  Mona Lisa  ', displayName: 'Mona Lisa' },
    { case: 'a null name', name: null, displayName: 'mona' },
    { case: 'no name field', name: undefined, displayName: 'mona' },
    { case: 'an empty name', name: '', displayName: 'mona' },
    { case: 'a blank name', name: ' \t ', displayName: 'mona' },
    { case: 'a 250-character name', name: 'n'.repeat(250), displayName: 'n'.repeat(200) },
  ])('shows $case as $displayName', ({ name, displayName }) => {
    const decision = decideGitHubSignIn(lookup({ profile: { ...PROFILE, name } }), LATER, MIN_AGE_MS);
    expect(decision).toMatchObject({ allowed: true, identity: { displayName } });
  });

  it('accepts a login of 39 characters', () => {
    const login = 'm'.repeat(39);
    const decision = decideGitHubSignIn(lookup({ profile: { ...PROFILE, login, name: null } }), LATER, MIN_AGE_MS);
    expect(decision).toMatchObject({ allowed: true, identity: { login, displayName: login } });
  });
});
