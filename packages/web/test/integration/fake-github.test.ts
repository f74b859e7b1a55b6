import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startFakeGitHub, type FakeGitHub, type FakeGitHubUser } from '../../../../test/support/fake-github.js';

const CALLBACK_URL = 'http://127.0.0.1:3000/api/auth/callback/github';
const CLIENT_ID = '0123456789abcdef0123';
const CLIENT_SECRET = 'fake-secret+with/reserved:characters';
const SCOPE = 'read:user user:email';

function octocat(overrides: Partial<FakeGitHubUser> = {}): FakeGitHubUser {
  return {
    id: 583231,
    login: 'octocat',
    name: 'The Octocat',
    email: 'octocat@example.com',
    createdAt: new Date('2011-01-25T18:44:36Z'),
    emails: [{ email: 'octocat@example.com', primary: true, verified: true, visibility: 'public' }],
    ...overrides,
  };
}

describe('fake GitHub', () => {
  let github: FakeGitHub;

  beforeEach(async () => {
    github = await startFakeGitHub({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedRedirectPrefix: CALLBACK_URL });
    github.addUser(octocat());
    github.signInAs('octocat');
  });

  afterEach(async () => {
    vi.useRealTimers();
    await github.close();
  });

  /** Sends GET /login/oauth/authorize and returns the Location of its 302 response. */
  async function authorize(parameters: Record<string, string> = {}): Promise<URL> {
    const url = new URL('/login/oauth/authorize', github.webUrl);
    const query = { client_id: CLIENT_ID, redirect_uri: CALLBACK_URL, scope: SCOPE, state: 'state-1', ...parameters };
    for (const [name, value] of Object.entries(query)) {
      url.searchParams.set(name, value);
    }
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(302);
    return new URL(response.headers.get('location')!);
  }

  async function authorizeCode(parameters: Record<string, string> = {}): Promise<string> {
    return (await authorize(parameters)).searchParams.get('code')!;
  }

  /** Posts a form to the token endpoint with JSON requested. */
  async function exchange(fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${github.webUrl}/login/oauth/access_token`, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields),
    });
  }

  async function exchangeCode(code: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const response = await exchange({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code, redirect_uri: CALLBACK_URL, ...extra });
    return (await response.json()) as Record<string, string>;
  }

  async function signIn(parameters: Record<string, string> = {}): Promise<string> {
    const tokens = await exchangeCode(await authorizeCode(parameters));
    return tokens.access_token!;
  }

  async function api(path: string, token: string | null, scheme = 'Bearer'): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/vnd.github+json', 'User-Agent': 'vome-test' };
    if (token !== null) {
      headers.Authorization = `${scheme} ${token}`;
    }
    return fetch(`${github.apiUrl}${path}`, { headers });
  }

  it('authorize redirects with code and state', async () => {
    const location = await authorize();

    expect(`${location.origin}${location.pathname}`).toBe(CALLBACK_URL);
    expect(location.searchParams.get('code')).toMatch(/^[0-9a-f]{20}$/);
    expect(location.searchParams.get('state')).toBe('state-1');
  });

  it('codes are random', async () => {
    const first = await authorizeCode();
    const second = await authorizeCode();

    expect(first).not.toBe(second);
  });

  it('token exchange returns JSON', async () => {
    const code = await authorizeCode();
    const response = await exchange({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code, redirect_uri: CALLBACK_URL });
    const body = (await response.json()) as Record<string, string>;

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(Object.keys(body)).toEqual(['access_token', 'scope', 'token_type']);
    expect(body.access_token).toMatch(/^gho_[A-Za-z0-9]{36}$/);
    expect(body.scope).toBe('read:user,user:email');
    expect(body.token_type).toBe('bearer');
  });

  it('token exchange returns form encoding', async () => {
    const code = await authorizeCode();
    const response = await exchange(
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code, redirect_uri: CALLBACK_URL },
      { Accept: '*/*' },
    );
    const body = new URLSearchParams(await response.text());

    expect(response.headers.get('content-type')).toBe('application/x-www-form-urlencoded; charset=utf-8');
    expect(body.get('access_token')).toMatch(/^gho_/);
    expect(body.get('scope')).toBe('read:user,user:email');
    expect(body.get('token_type')).toBe('bearer');
  });

  it('token exchange returns XML', async () => {
    const code = await authorizeCode({ scope: 'read:user' });
    const response = await exchange(
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code },
      { Accept: 'application/xml' },
    );
    const body = await response.text();

    expect(response.headers.get('content-type')).toBe('application/xml; charset=utf-8');
    expect(body).toMatch(/^<OAuth><access_token>gho_[A-Za-z0-9]{36}<\/access_token><scope>read:user<\/scope><token_type>bearer<\/token_type><\/OAuth>$/);
  });

  it('token exchange accepts JSON body', async () => {
    const code = await authorizeCode();
    const response = await fetch(`${github.webUrl}/login/oauth/access_token`, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code, redirect_uri: CALLBACK_URL }),
    });
    const body = (await response.json()) as Record<string, string>;

    expect(body.access_token).toMatch(/^gho_/);
  });

  it('token exchange accepts Basic auth', async () => {
    const code = await authorizeCode();
    // RFC 6749 section 2.3.1: form-encode each part, then base64 the pair.
    const pair = `${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`;
    const response = await exchange(
      { grant_type: 'authorization_code', code, redirect_uri: CALLBACK_URL },
      { Authorization: `Basic ${Buffer.from(pair).toString('base64')}` },
    );
    const body = (await response.json()) as Record<string, string>;

    expect(body.access_token).toMatch(/^gho_/);
    expect(github.requests.at(-1)!.authorization).toBe('Basic');
  });

  it('code reuse is rejected', async () => {
    const code = await authorizeCode();
    await exchangeCode(code);
    const second = await exchange({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code, redirect_uri: CALLBACK_URL });

    expect(second.status).toBe(200);
    expect(await second.json()).toEqual({
      error: 'bad_verification_code',
      error_description: 'The code passed is incorrect or expired.',
      error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code',
    });
  });

  it('unknown code is rejected', async () => {
    const body = await exchangeCode('0000000000aaaaaaaaaa');

    expect(body.error).toBe('bad_verification_code');
  });

  it('code expires after ten minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    const stale = await authorizeCode();
    const fresh = await authorizeCode();

    vi.setSystemTime(start + 10 * 60 * 1000 - 1);
    expect((await exchangeCode(fresh)).access_token).toMatch(/^gho_/);

    vi.setSystemTime(start + 10 * 60 * 1000);
    expect((await exchangeCode(stale)).error).toBe('bad_verification_code');
  });

  it('wrong secret is rejected', async () => {
    const code = await authorizeCode();
    const response = await exchange({ client_id: CLIENT_ID, client_secret: 'wrong', code, redirect_uri: CALLBACK_URL });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      error: 'incorrect_client_credentials',
      error_description: 'The client_id and/or client_secret passed are incorrect.',
      error_uri:
        'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials',
    });
  });

  it('wrong secret keeps the code', async () => {
    const code = await authorizeCode();
    await exchange({ client_id: CLIENT_ID, client_secret: 'wrong', code });

    expect((await exchangeCode(code)).access_token).toMatch(/^gho_/);
  });

  it('error as form encoding', async () => {
    const code = await authorizeCode();
    const response = await exchange({ client_id: CLIENT_ID, client_secret: 'wrong', code }, { Accept: '' });
    const body = new URLSearchParams(await response.text());

    expect(body.get('error')).toBe('incorrect_client_credentials');
    expect(body.get('error_description')).toBe('The client_id and/or client_secret passed are incorrect.');
  });

  it('token redirect_uri must match', async () => {
    const code = await authorizeCode();
    const body = await exchangeCode(code, { redirect_uri: `${CALLBACK_URL}/other` });

    expect(body).toEqual({
      error: 'redirect_uri_mismatch',
      error_description: 'The redirect_uri MUST match the registered callback URL for this application.',
      error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#redirect-uri-mismatch2',
    });
  });

  it('authorize rejects foreign redirect_uri', async () => {
    const location = await authorize({ redirect_uri: 'http://127.0.0.1:3000/api/auth/callback/githubx' });

    expect(`${location.origin}${location.pathname}`).toBe(CALLBACK_URL);
    expect(location.searchParams.get('error')).toBe('redirect_uri_mismatch');
    expect(location.searchParams.get('error_description')).toBe(
      'The redirect_uri MUST match the registered callback URL for this application.',
    );
    expect(location.searchParams.get('error_uri')).toBe(
      'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch',
    );
    expect(location.searchParams.get('state')).toBe('state-1');
    expect(location.searchParams.has('code')).toBe(false);
  });

  it('redirect_uri rules follow GitHub', async () => {
    const cases: Array<[string, boolean]> = [
      [CALLBACK_URL, true],
      [`${CALLBACK_URL}/sub/dir`, true],
      ['http://127.0.0.1:4321/api/auth/callback/github', true],
      ['http://127.0.0.1:3000/api/auth/callback', false],
      ['http://localhost:3000/api/auth/callback/github', false],
      ['https://127.0.0.1:3000/api/auth/callback/github', false],
      ['not a url', false],
    ];
    for (const [redirectUri, allowed] of cases) {
      const location = await authorize({ redirect_uri: redirectUri });
      expect([redirectUri, location.searchParams.has('code')]).toEqual([redirectUri, allowed]);
    }
  });

  it('redirect_uri host rules follow GitHub', async () => {
    await github.close();
    github = await startFakeGitHub({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedRedirectPrefix: 'http://example.com/path' });
    github.addUser(octocat());
    github.signInAs('octocat');
    // The example table of GitHub's "Redirect URLs" section.
    const cases: Array<[string, boolean]> = [
      ['http://example.com/path', true],
      ['http://example.com/path/subdir/other', true],
      ['http://oauth.example.com/path', true],
      ['http://oauth.example.com/path/subdir/other', true],
      ['http://example.com/bar', false],
      ['http://example.com/', false],
      ['http://example.com:8080/path', false],
      ['http://oauth.example.com:8080/path', false],
      ['http://example.org', false],
    ];
    for (const [redirectUri, allowed] of cases) {
      const location = await authorize({ redirect_uri: redirectUri });
      expect([redirectUri, location.searchParams.has('code')]).toEqual([redirectUri, allowed]);
    }
  });

  it('omitted redirect_uri uses callback', async () => {
    const url = new URL('/login/oauth/authorize', github.webUrl);
    url.searchParams.set('client_id', CLIENT_ID);
    const response = await fetch(url, { redirect: 'manual' });
    const location = new URL(response.headers.get('location')!);

    expect(`${location.origin}${location.pathname}`).toBe(CALLBACK_URL);
    expect(location.searchParams.has('code')).toBe(true);
    expect(location.searchParams.has('state')).toBe(false);
  });

  it('unknown client_id gets 404 page', async () => {
    const url = new URL('/login/oauth/authorize', github.webUrl);
    url.searchParams.set('client_id', 'unknown');
    url.searchParams.set('redirect_uri', CALLBACK_URL);
    const response = await fetch(url, { redirect: 'manual' });

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
  });

  it('denial redirects with access_denied', async () => {
    github.denyNext();
    const denied = await authorize();
    const next = await authorize();

    expect(`${denied.origin}${denied.pathname}`).toBe(CALLBACK_URL);
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('error_description')).toBe('The user has denied your application access.');
    expect(denied.searchParams.get('error_uri')).toBe(
      'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied',
    );
    expect(denied.searchParams.get('state')).toBe('state-1');
    expect(denied.searchParams.has('code')).toBe(false);
    expect(next.searchParams.has('code')).toBe(true);
  });

  it('signed-out browser goes to login', async () => {
    const signedOut = await startFakeGitHub({ clientId: CLIENT_ID, allowedRedirectPrefix: CALLBACK_URL });
    try {
      const url = new URL('/login/oauth/authorize', signedOut.webUrl);
      url.searchParams.set('client_id', CLIENT_ID);
      url.searchParams.set('state', 'abc');
      const response = await fetch(url, { redirect: 'manual' });
      const location = new URL(response.headers.get('location')!);

      expect(response.status).toBe(302);
      expect(location.pathname).toBe('/login');
      expect(location.searchParams.get('return_to')).toBe(`/login/oauth/authorize?client_id=${CLIENT_ID}&state=abc`);
    } finally {
      await signedOut.close();
    }
  });

  it('signInAs rejects unknown login', () => {
    expect(() => github.signInAs('nobody')).toThrow('signInAs: no user has the login "nobody". Call addUser first.');
  });

  it('user endpoint returns the profile', async () => {
    const token = await signIn();
    const response = await api('/user', token);
    const body = (await response.json()) as Record<string, unknown>;

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('x-oauth-scopes')).toBe('read:user, user:email');
    expect(response.headers.get('x-accepted-oauth-scopes')).toBe('');
    expect(body.login).toBe('octocat');
    expect(body.id).toBe(583231);
    expect(body.node_id).toBe(Buffer.from('04:User583231').toString('base64'));
    expect(body.avatar_url).toBe(`${github.webUrl}/avatars/u/583231?v=4`);
    expect(body.html_url).toBe(`${github.webUrl}/octocat`);
    expect(body.url).toBe(`${github.apiUrl}/users/octocat`);
    expect(body.type).toBe('User');
    expect(body.site_admin).toBe(false);
    expect(body.name).toBe('The Octocat');
    expect(body.email).toBe('octocat@example.com');
    expect(body.created_at).toBe('2011-01-25T18:44:36Z');
    expect(body.updated_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(body.two_factor_authentication).toBe(false);
  });

  it('user without read:user is public', async () => {
    const token = await signIn({ scope: 'user:email' });
    const body = (await (await api('/user', token)).json()) as Record<string, unknown>;

    expect(body.user_view_type).toBe('public');
    expect('two_factor_authentication' in body).toBe(false);
    expect(body.login).toBe('octocat');
  });

  it('created_at is the exact second', async () => {
    github.addUser(octocat({ createdAt: new Date('2026-03-01T09:15:30.999Z') }));
    const token = await signIn();
    const body = (await (await api('/user', token)).json()) as Record<string, unknown>;

    expect(body.created_at).toBe('2026-03-01T09:15:30Z');
  });

  it('null createdAt omits created_at', async () => {
    github.addUser(octocat({ createdAt: null }));
    const token = await signIn();
    const body = (await (await api('/user', token)).json()) as Record<string, unknown>;

    expect('created_at' in body).toBe(false);
    expect(body.updated_at).toMatch(/Z$/);
  });

  it('token scheme works too', async () => {
    const token = await signIn();
    const response = await api('/user', token, 'token');

    expect(response.status).toBe(200);
  });

  it('missing token gets 401', async () => {
    const response = await api('/user', null);

    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      message: 'Requires authentication',
      documentation_url: 'https://docs.github.com/rest',
      status: '401',
    });
  });

  it('invalid token gets 401', async () => {
    const response = await api('/user', 'gho_invalid');

    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toEqual({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
  });

  it('missing User-Agent gets 403', async () => {
    const token = await signIn();
    const response = await fetch(`${github.apiUrl}/user`, { headers: { Authorization: `Bearer ${token}`, 'User-Agent': '' } });

    expect(response.status).toBe(403);
  });

  it('emails endpoint lists addresses', async () => {
    const emails: FakeGitHubUser['emails'] = [
      { email: 'private@example.com', primary: true, verified: true, visibility: 'private' },
      { email: 'other@example.com', primary: false, verified: false, visibility: null },
    ];
    github.addUser(octocat({ email: null, emails }));
    const token = await signIn();
    const profile = (await (await api('/user', token)).json()) as Record<string, unknown>;
    const response = await api('/user/emails', token, 'token');

    expect(profile.email).toBeNull();
    expect(response.status).toBe(200);
    expect(response.headers.get('x-oauth-scopes')).toBe('read:user, user:email');
    expect(response.headers.get('link')).toBeNull();
    expect(await response.json()).toEqual(emails);
  });

  it('unverified addresses stay unverified', async () => {
    const emails: FakeGitHubUser['emails'] = [
      { email: 'a@example.com', primary: true, verified: false, visibility: 'private' },
      { email: 'b@example.com', primary: false, verified: false, visibility: null },
    ];
    github.addUser(octocat({ email: null, emails }));
    const token = await signIn();
    const body = (await (await api('/user/emails', token)).json()) as FakeGitHubUser['emails'];

    expect(body.map((entry) => entry.verified)).toEqual([false, false]);
  });

  it('emails are paginated', async () => {
    const emails: FakeGitHubUser['emails'] = ['a', 'b', 'c'].map((name, index) => ({
      email: `${name}@example.com`,
      primary: index === 0,
      verified: true,
      visibility: null,
    }));
    github.addUser(octocat({ emails }));
    const token = await signIn();
    const response = await api('/user/emails?per_page=1&page=2', token);
    const base = `${github.apiUrl}/user/emails`;

    expect(await response.json()).toEqual([emails[1]]);
    expect(response.headers.get('link')).toBe(
      `<${base}?per_page=1&page=1>; rel="prev", <${base}?per_page=1&page=3>; rel="next", ` +
        `<${base}?per_page=1&page=3>; rel="last", <${base}?per_page=1&page=1>; rel="first"`,
    );
  });

  it('emails without scope gets 404', async () => {
    const token = await signIn({ scope: 'read:user' });
    const response = await api('/user/emails', token);

    expect(response.status).toBe(404);
    expect(response.headers.get('x-oauth-scopes')).toBe('read:user');
    expect(await response.json()).toEqual({
      message: 'Not Found',
      documentation_url: 'https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user',
      status: '404',
    });
  });

  it('user scope includes user:email', async () => {
    const token = await signIn({ scope: 'user user:email' });
    const response = await api('/user/emails', token);

    expect(response.headers.get('x-oauth-scopes')).toBe('user');
    expect(response.status).toBe(200);
  });

  it('emailsStatus fails the emails call', async () => {
    github.addUser(octocat({ email: null, emailsStatus: 500 }));
    const token = await signIn();
    const profile = await api('/user', token);
    const response = await api('/user/emails', token);

    expect(profile.status).toBe(200);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      message: 'Internal Server Error',
      documentation_url: 'https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user',
      status: '500',
    });
  });

  it('emailsStatus 403 body', async () => {
    github.addUser(octocat({ emailsStatus: 403 }));
    const token = await signIn();
    const response = await api('/user/emails', token);

    expect(response.status).toBe(403);
    expect(((await response.json()) as Record<string, string>).message).toBe('Forbidden');
  });

  it('omitted scope reuses granted scopes', async () => {
    await signIn({ scope: 'read:user' });
    await signIn({ scope: 'user:email' });
    const tokens = await exchangeCode(await authorizeCode({ scope: '' }));

    expect(tokens.scope).toBe('read:user,user:email');
  });

  it('PKCE verifier is checked', async () => {
    const verifier = 'a'.repeat(43);
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const pkce = { code_challenge: challenge, code_challenge_method: 'S256' };

    const wrong = await exchangeCode(await authorizeCode(pkce), { code_verifier: 'b'.repeat(43) });
    const missing = await exchangeCode(await authorizeCode(pkce));
    const right = await exchangeCode(await authorizeCode(pkce), { code_verifier: verifier });

    expect(wrong.error).toBe('bad_verification_code');
    expect(missing.error).toBe('bad_verification_code');
    expect(right.access_token).toMatch(/^gho_/);
  });

  it('PKCE plain method is rejected', async () => {
    const location = await authorize({ code_challenge: 'abc', code_challenge_method: 'plain' });

    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.has('code')).toBe(false);
  });

  it('unknown API path gets 404 JSON', async () => {
    const token = await signIn();
    const response = await api('/user/repos', token);

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' });
  });

  it('requests are recorded redacted', async () => {
    const code = await authorizeCode();
    await exchangeCode(code);
    const [authorizeRequest, tokenRequest] = github.requests;

    expect(github.requests).toHaveLength(2);
    expect(authorizeRequest).toEqual({
      method: 'GET',
      path: '/login/oauth/authorize',
      query: { client_id: CLIENT_ID, redirect_uri: CALLBACK_URL, scope: SCOPE, state: 'state-1' },
      body: {},
      authorization: null,
    });
    expect(tokenRequest).toEqual({
      method: 'POST',
      path: '/login/oauth/access_token',
      query: {},
      body: { client_id: CLIENT_ID, client_secret: '[redacted]', code, redirect_uri: CALLBACK_URL },
      authorization: null,
    });
  });

  it('Basic request has no secret field', async () => {
    const code = await authorizeCode();
    const pair = `${CLIENT_ID}:${encodeURIComponent(CLIENT_SECRET)}`;
    await exchange({ code }, { Authorization: `Basic ${Buffer.from(pair).toString('base64')}` });

    expect(github.requests.at(-1)!.body).toEqual({ code });
  });
});
