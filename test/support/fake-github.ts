// A test double of GitHub's OAuth web application flow and of the two REST
// endpoints that the portal reads (GET /user and GET /user/emails). It listens
// on 127.0.0.1 on a port that the OS picks and lays out its URLs as GitHub
// Enterprise Server does. The web origin serves /login/oauth/*, and the REST
// API is under /api/v3.
//
// Behaviour follows GitHub's documentation (docs.github.com, pages "Authorizing
// OAuth apps", "Troubleshooting authorization request errors", "Troubleshooting
// OAuth app access token request errors", "Scopes for OAuth apps", "REST API
// endpoints for users" and "for emails", "Troubleshooting the REST API",
// "Getting started with the REST API") and the 2025-07-14 changelog entry on
// PKCE. Where the documentation is silent, a comment names the choice made here.

import { createHash, randomBytes } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeGitHubUser {
  id: number;
  login: string;
  name: string | null;
  /** Public profile email, or null when the user keeps it private. */
  email: string | null;
  /** Account creation time. Null makes GET /user omit `created_at` entirely. */
  createdAt: Date | null;
  emails: Array<{ email: string; primary: boolean; verified: boolean; visibility: 'public' | 'private' | null }>;
  /** When set, GET /user/emails returns this HTTP status and GitHub's error body instead. */
  emailsStatus?: number;
}

/** One request received by the double, with the client secret hidden. */
export interface FakeGitHubRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  /** Form or JSON body fields. A `client_secret` field, when sent, has the value "[redacted]". */
  body: Record<string, string>;
  /** Scheme of the Authorization header ("Bearer", "token", "Basic"), or null without one. */
  authorization: string | null;
}

export interface FakeGitHub {
  /** e.g. http://127.0.0.1:40123 — the web origin (authorize, access_token). */
  webUrl: string;
  /** e.g. http://127.0.0.1:40123/api/v3 — the REST API base, as on GitHub Enterprise Server. */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** Adds a user, or replaces the user of the same login. Tokens already issued to that login see the new data. */
  addUser(user: FakeGitHubUser): void;
  /** Sets the user who approves the following authorization requests, like a browser already signed in to GitHub. */
  signInAs(login: string): void;
  /** Makes the next authorize request end as a user's denial (error=access_denied). */
  denyNext(): void;
  /** Every request received, in order, with the client secret redacted. */
  requests: FakeGitHubRequest[];
  close(): Promise<void>;
}

export interface FakeGitHubOptions {
  clientId?: string;
  clientSecret?: string;
  /**
   * The OAuth app's registered callback URL. GitHub accepts a redirect_uri on
   * the same scheme, host (or a subdomain of it) and port, whose path is this
   * path or below it. For a loopback host the port may differ. The default,
   * http://127.0.0.1/, accepts every http://127.0.0.1 URL.
   */
  allowedRedirectPrefix?: string;
}

const AUTHORIZATION_CODE_LIFETIME_MS = 10 * 60 * 1000;
const MAX_BODY_BYTES = 1024 * 1024;
const REDACTED = '[redacted]';

const REST_DOCUMENTATION_URL = 'https://docs.github.com/rest';
const EMAILS_DOCUMENTATION_URL = 'https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user';
const AUTHORIZATION_ERRORS_URL = 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/';
const TOKEN_ERRORS_URL = 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/';

/** The error codes and descriptions that GitHub returns from the token endpoint. */
const TOKEN_ERRORS = {
  incorrect_client_credentials: {
    description: 'The client_id and/or client_secret passed are incorrect.',
    uri: `${TOKEN_ERRORS_URL}#incorrect-client-credentials`,
  },
  redirect_uri_mismatch: {
    description: 'The redirect_uri MUST match the registered callback URL for this application.',
    uri: `${TOKEN_ERRORS_URL}#redirect-uri-mismatch2`,
  },
  bad_verification_code: {
    description: 'The code passed is incorrect or expired.',
    uri: `${TOKEN_ERRORS_URL}#bad-verification-code`,
  },
  // The web flow documentation lists no error for another grant_type, so this
  // code comes from GitHub's device flow error table.
  unsupported_grant_type: {
    description: 'The grant type is not supported by this endpoint.',
    uri: `${TOKEN_ERRORS_URL}#unsupported-grant-type`,
  },
} as const;

type TokenErrorCode = keyof typeof TOKEN_ERRORS;

/**
 * Scopes that another scope includes, from the indented rows of GitHub's scope
 * table. GitHub drops an included scope when its parent is also requested.
 */
const INCLUDED_SCOPES: Record<string, readonly string[]> = {
  repo: ['repo:status', 'repo_deployment', 'public_repo', 'repo:invite', 'security_events'],
  'admin:repo_hook': ['write:repo_hook', 'read:repo_hook'],
  'write:repo_hook': ['read:repo_hook'],
  'admin:org': ['write:org', 'read:org'],
  'write:org': ['read:org'],
  'admin:public_key': ['write:public_key', 'read:public_key'],
  'write:public_key': ['read:public_key'],
  user: ['read:user', 'user:email', 'user:follow'],
  project: ['read:project'],
  'admin:gpg_key': ['write:gpg_key', 'read:gpg_key'],
  'write:gpg_key': ['read:gpg_key'],
  'admin:enterprise': ['manage_runners:enterprise', 'manage_billing:enterprise', 'read:enterprise'],
};

interface AuthorizationGrant {
  login: string;
  redirectUri: string;
  scopes: string[];
  expiresAt: number;
  codeChallenge: string | null;
}

interface AccessToken {
  login: string;
  scopes: string[];
}

interface FakeGitHubState {
  clientId: string;
  clientSecret: string;
  callbackUrl: URL;
  webUrl: string;
  apiUrl: string;
  users: Map<string, { user: FakeGitHubUser; updatedAt: Date }>;
  signedInLogin: string | null;
  denyNextAuthorization: boolean;
  /** Scopes that each user has granted to the app so far. An authorize request without `scope` gets these. */
  grantedScopes: Map<string, string[]>;
  codes: Map<string, AuthorizationGrant>;
  tokens: Map<string, AccessToken>;
}

/**
 * Starts the double on 127.0.0.1 with a port that the OS picks. The client ID
 * and secret are random unless given.
 */
export async function startFakeGitHub(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const callbackUrl = new URL(options.allowedRedirectPrefix ?? 'http://127.0.0.1/');
  const requests: FakeGitHubRequest[] = [];
  const state: FakeGitHubState = {
    clientId: options.clientId ?? randomBytes(10).toString('hex'),
    clientSecret: options.clientSecret ?? randomBytes(20).toString('hex'),
    callbackUrl,
    webUrl: '',
    apiUrl: '',
    users: new Map(),
    signedInLogin: null,
    denyNextAuthorization: false,
    grantedScopes: new Map(),
    codes: new Map(),
    tokens: new Map(),
  };

  const server = createServer((request, response) => {
    handleRequest(state, requests, request, response).catch((error: unknown) => {
      console.error(`fake GitHub: ${request.method} ${request.url?.split('?')[0]} failed:`, error);
      if (!response.headersSent) {
        sendJson(response, 500, { message: `fake GitHub failed: ${String(error)}` });
      } else {
        response.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  state.webUrl = `http://127.0.0.1:${port}`;
  state.apiUrl = `${state.webUrl}/api/v3`;

  return {
    webUrl: state.webUrl,
    apiUrl: state.apiUrl,
    clientId: state.clientId,
    clientSecret: state.clientSecret,
    requests,
    addUser(user) {
      validateUser(user);
      state.users.set(user.login, { user: structuredClone(user), updatedAt: new Date() });
    },
    signInAs(login) {
      if (!state.users.has(login)) {
        throw new Error(`signInAs: no user has the login "${login}". Call addUser first.`);
      }
      state.signedInLogin = login;
    },
    denyNext() {
      state.denyNextAuthorization = true;
    },
    async close() {
      // fetch keeps connections alive, and close() waits for open connections.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

function validateUser(user: FakeGitHubUser): void {
  if (!Number.isSafeInteger(user.id) || user.id <= 0) {
    throw new Error(`addUser: id must be a positive integer, got ${user.id}`);
  }
  if (user.login === '') {
    throw new Error('addUser: login must not be empty');
  }
  if (user.createdAt !== null && Number.isNaN(user.createdAt.getTime())) {
    throw new Error(`addUser: createdAt of "${user.login}" is an invalid Date`);
  }
}

async function handleRequest(
  state: FakeGitHubState,
  requests: FakeGitHubRequest[],
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? '/', state.webUrl);
  const method = request.method ?? 'GET';
  const rawBody = await readBody(request);
  const body = parseBody(request.headers['content-type'], rawBody);

  requests.push({
    method,
    path: url.pathname,
    query: redactSecret(Object.fromEntries(url.searchParams)),
    body: redactSecret(body),
    authorization: request.headers.authorization?.trim().split(/\s+/)[0] ?? null,
  });

  if (url.pathname === '/api/v3' || url.pathname.startsWith('/api/v3/')) {
    handleApi(state, request, method, url, response);
  } else if (method === 'GET' && url.pathname === '/login/oauth/authorize') {
    handleAuthorize(state, url, response);
  } else if (method === 'POST' && url.pathname === '/login/oauth/access_token') {
    handleAccessToken(state, request, url, body, response);
  } else if (method === 'GET' && url.pathname === '/login') {
    sendHtml(response, 200, 'Sign in to GitHub', 'No user is signed in to the fake GitHub. Call signInAs(login) first.');
  } else {
    sendHtml(response, 404, 'Page not found', `The fake GitHub has no page at ${url.pathname}.`);
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new Error(`request body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses a form-encoded or JSON body into string fields. Any other body gives no fields. */
function parseBody(contentType: string | undefined, rawBody: string): Record<string, string> {
  if (rawBody === '') {
    return {};
  }
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawBody);
    } catch {
      return {};
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return {};
    }
    const fields: Record<string, string> = {};
    for (const [key, value] of Object.entries(parsed)) {
      fields[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    return fields;
  }
  if (mediaType === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(rawBody));
  }
  return {};
}

function redactSecret(fields: Record<string, string>): Record<string, string> {
  return 'client_secret' in fields ? { ...fields, client_secret: REDACTED } : fields;
}

// ---------------------------------------------------------------------------
// GET /login/oauth/authorize

function handleAuthorize(state: FakeGitHubState, url: URL, response: ServerResponse): void {
  const query = url.searchParams;
  const requestState = query.get('state');

  // GitHub shows its HTML 404 page for an unknown client_id.
  if (query.get('client_id') !== state.clientId) {
    sendHtml(response, 404, 'Page not found', 'No OAuth app has this client_id.');
    return;
  }

  // Without redirect_uri GitHub uses the registered callback URL. A redirect_uri
  // that does not match sends the user to the registered callback URL with
  // error=redirect_uri_mismatch.
  const requestedRedirect = query.get('redirect_uri');
  let redirectUri: string;
  if (requestedRedirect === null) {
    redirectUri = state.callbackUrl.href;
  } else if (isRedirectUriAllowed(requestedRedirect, state.callbackUrl)) {
    redirectUri = requestedRedirect;
  } else {
    redirectWithError(response, state.callbackUrl.href, requestState, {
      error: 'redirect_uri_mismatch',
      description: 'The redirect_uri MUST match the registered callback URL for this application.',
      uri: `${AUTHORIZATION_ERRORS_URL}#redirect-uri-mismatch`,
    });
    return;
  }

  // GitHub accepts only the S256 method. The error for another method is not
  // documented, so this follows RFC 7636 section 4.4.1 (invalid_request).
  const codeChallenge = query.get('code_challenge');
  if (codeChallenge !== null && query.get('code_challenge_method') !== 'S256') {
    redirectWithError(response, redirectUri, requestState, {
      error: 'invalid_request',
      description: 'code_challenge_method must be S256.',
      uri: AUTHORIZATION_ERRORS_URL,
    });
    return;
  }

  // A browser without a GitHub session goes to the sign-in page first.
  const login = state.signedInLogin;
  if (login === null) {
    const signIn = new URL('/login', state.webUrl);
    signIn.searchParams.set('client_id', state.clientId);
    signIn.searchParams.set('return_to', `${url.pathname}${url.search}`);
    redirect(response, signIn.href);
    return;
  }

  if (state.denyNextAuthorization) {
    state.denyNextAuthorization = false;
    redirectWithError(response, redirectUri, requestState, {
      error: 'access_denied',
      description: 'The user has denied your application access.',
      uri: `${AUTHORIZATION_ERRORS_URL}#access-denied`,
    });
    return;
  }

  // The double approves at once, as GitHub does for a user who already granted
  // these scopes. A first-time user would see the consent page.
  const requestedScopes = parseScopes(query.get('scope') ?? '');
  const scopes = requestedScopes.length > 0 ? normalizeScopes(requestedScopes) : (state.grantedScopes.get(login) ?? []);
  state.grantedScopes.set(login, normalizeScopes([...(state.grantedScopes.get(login) ?? []), ...scopes]));

  const code = randomBytes(10).toString('hex');
  state.codes.set(code, {
    login,
    redirectUri,
    scopes,
    expiresAt: Date.now() + AUTHORIZATION_CODE_LIFETIME_MS,
    codeChallenge,
  });

  const target = new URL(redirectUri);
  target.searchParams.set('code', code);
  if (requestState !== null) {
    target.searchParams.set('state', requestState);
  }
  redirect(response, target.href);
}

/**
 * Applies GitHub's redirect URL rule: same scheme, the registered host or a
 * subdomain of it, the same port, and a path at or below the registered path.
 * A loopback host must match exactly but may use any port.
 */
function isRedirectUriAllowed(candidate: string, callbackUrl: URL): boolean {
  let redirectUrl: URL;
  try {
    redirectUrl = new URL(candidate);
  } catch {
    return false;
  }
  if (redirectUrl.protocol !== callbackUrl.protocol) {
    return false;
  }

  // NOTE: GitHub's page names only 127.0.0.1 and ::1 as loopback hosts. This
  // also treats localhost as one because an older version of the page did.
  const loopbackHosts = ['127.0.0.1', '[::1]', 'localhost'];
  if (loopbackHosts.includes(callbackUrl.hostname)) {
    if (redirectUrl.hostname !== callbackUrl.hostname) {
      return false;
    }
  } else {
    const sameHost = redirectUrl.hostname === callbackUrl.hostname || redirectUrl.hostname.endsWith(`.${callbackUrl.hostname}`);
    if (!sameHost || redirectUrl.port !== callbackUrl.port) {
      return false;
    }
  }

  const callbackPath = callbackUrl.pathname;
  const directory = callbackPath.endsWith('/') ? callbackPath : `${callbackPath}/`;
  return redirectUrl.pathname === callbackPath || redirectUrl.pathname.startsWith(directory);
}

/** Splits a scope parameter on spaces, as documented, and on commas, which GitHub also accepts. */
function parseScopes(scope: string): string[] {
  return scope.split(/[\s,]+/).filter((name) => name !== '');
}

/**
 * Drops repeated scopes and scopes included in another requested scope, as
 * GitHub stores them. The documentation does not give the order of the stored
 * list, so this keeps the request order. Unknown scope names are kept, although
 * GitHub may drop them.
 */
function normalizeScopes(scopes: string[]): string[] {
  const unique = [...new Set(scopes)];
  return unique.filter((scope) => !unique.some((other) => INCLUDED_SCOPES[other]?.includes(scope)));
}

function redirect(response: ServerResponse, location: string): void {
  response.writeHead(302, { Location: location, 'Content-Type': 'text/html; charset=utf-8' });
  response.end(`<html><body>You are being <a href="${escapeXml(location)}">redirected</a>.</body></html>`);
}

function redirectWithError(
  response: ServerResponse,
  redirectUri: string,
  requestState: string | null,
  error: { error: string; description: string; uri: string },
): void {
  const target = new URL(redirectUri);
  target.searchParams.set('error', error.error);
  target.searchParams.set('error_description', error.description);
  target.searchParams.set('error_uri', error.uri);
  if (requestState !== null) {
    target.searchParams.set('state', requestState);
  }
  redirect(response, target.href);
}

// ---------------------------------------------------------------------------
// POST /login/oauth/access_token

function handleAccessToken(
  state: FakeGitHubState,
  request: IncomingMessage,
  url: URL,
  body: Record<string, string>,
  response: ServerResponse,
): void {
  // Many GitHub clients send the parameters in the query string. Body fields take precedence.
  const fields: Record<string, string> = { ...Object.fromEntries(url.searchParams), ...body };
  const credentials = parseBasicCredentials(request.headers.authorization) ?? {
    clientId: fields.client_id,
    clientSecret: fields.client_secret,
  };

  if (credentials.clientId !== state.clientId || credentials.clientSecret !== state.clientSecret) {
    sendTokenError(request, response, 'incorrect_client_credentials');
    return;
  }
  if (fields.grant_type !== undefined && fields.grant_type !== 'authorization_code') {
    sendTokenError(request, response, 'unsupported_grant_type');
    return;
  }

  const code = fields.code ?? '';
  const grant = state.codes.get(code);
  if (grant === undefined || Date.now() >= grant.expiresAt) {
    state.codes.delete(code);
    sendTokenError(request, response, 'bad_verification_code');
    return;
  }
  // The documentation says GitHub compares redirect_uri with the URI used when the code was issued.
  if (fields.redirect_uri !== undefined && fields.redirect_uri !== grant.redirectUri) {
    sendTokenError(request, response, 'redirect_uri_mismatch');
    return;
  }
  // NOTE: GitHub does not document the error for a wrong or missing
  // code_verifier, so bad_verification_code is a guess.
  if (grant.codeChallenge !== null && !verifierMatches(fields.code_verifier, grant.codeChallenge)) {
    sendTokenError(request, response, 'bad_verification_code');
    return;
  }

  // A code is single use: only a successful exchange consumes it.
  state.codes.delete(code);
  const accessToken = `gho_${randomBase62(36)}`;
  state.tokens.set(accessToken, { login: grant.login, scopes: grant.scopes });
  sendTokenResponse(request, response, { access_token: accessToken, scope: grant.scopes.join(','), token_type: 'bearer' });
}

/** Decodes HTTP Basic client credentials, which RFC 6749 section 2.3.1 form-encodes before base64. */
function parseBasicCredentials(header: string | undefined): { clientId: string; clientSecret: string } | null {
  const match = /^Basic\s+(\S+)$/i.exec(header?.trim() ?? '');
  if (match === null) {
    return null;
  }
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  if (separator < 0) {
    return null;
  }
  const formDecode = (text: string) => decodeURIComponent(text.replace(/\+/g, ' '));
  try {
    return { clientId: formDecode(decoded.slice(0, separator)), clientSecret: formDecode(decoded.slice(separator + 1)) };
  } catch {
    return null;
  }
}

function verifierMatches(verifier: string | undefined, challenge: string): boolean {
  if (verifier === undefined) {
    return false;
  }
  return createHash('sha256').update(verifier).digest('base64url') === challenge;
}

function randomBase62(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(length), (byte) => alphabet[byte % alphabet.length]).join('');
}

function sendTokenError(request: IncomingMessage, response: ServerResponse, code: TokenErrorCode): void {
  // GitHub sends token errors with HTTP status 200.
  const error = TOKEN_ERRORS[code];
  sendTokenResponse(request, response, { error: code, error_description: error.description, error_uri: error.uri });
}

/** Sends token endpoint fields as JSON, XML or form encoding, chosen by the Accept header as GitHub does. */
function sendTokenResponse(request: IncomingMessage, response: ServerResponse, fields: Record<string, string>): void {
  const accept = (request.headers.accept ?? '').toLowerCase();
  if (accept.includes('application/json')) {
    sendJson(response, 200, fields);
  } else if (accept.includes('application/xml')) {
    const elements = Object.entries(fields).map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`);
    response.writeHead(200, { 'Content-Type': 'application/xml; charset=utf-8' });
    response.end(`<OAuth>${elements.join('')}</OAuth>`);
  } else {
    response.writeHead(200, { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' });
    response.end(new URLSearchParams(fields).toString());
  }
}

// ---------------------------------------------------------------------------
// REST API under /api/v3

function handleApi(state: FakeGitHubState, request: IncomingMessage, method: string, url: URL, response: ServerResponse): void {
  response.setHeader('X-GitHub-Media-Type', 'github.v3; format=json');

  // GitHub rejects REST requests without a User-Agent header with 403.
  if ((request.headers['user-agent'] ?? '').trim() === '') {
    response.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' });
    response.end('Request forbidden by administrative rules: the User-Agent header is missing.\n');
    return;
  }

  const route = url.pathname.slice('/api/v3'.length);
  if (method !== 'GET' || (route !== '/user' && route !== '/user/emails')) {
    sendApiError(response, 404, 'Not Found', REST_DOCUMENTATION_URL);
    return;
  }

  // A request without credentials gets "Requires authentication", and an unknown token gets "Bad credentials".
  const accessToken = readAccessToken(request.headers.authorization);
  if (accessToken === null) {
    sendApiError(response, 401, 'Requires authentication', REST_DOCUMENTATION_URL);
    return;
  }
  const token = state.tokens.get(accessToken);
  const account = token === undefined ? undefined : state.users.get(token.login);
  if (token === undefined || account === undefined) {
    sendApiError(response, 401, 'Bad credentials', REST_DOCUMENTATION_URL);
    return;
  }

  if (route === '/user') {
    const headers = scopeHeaders(token, '');
    sendJson(response, 200, renderUser(state, account.user, account.updatedAt, token.scopes), headers);
  } else {
    sendEmails(state, url, response, account.user, token);
  }
}

/** Reads the token of a "Bearer", "token" or Basic (token as password) Authorization header. */
function readAccessToken(header: string | undefined): string | null {
  const match = /^(\S+)\s+(\S+)$/.exec(header?.trim() ?? '');
  if (match === null) {
    return null;
  }
  const scheme = match[1]!.toLowerCase();
  if (scheme === 'bearer' || scheme === 'token') {
    return match[2]!;
  }
  if (scheme === 'basic') {
    const decoded = Buffer.from(match[2]!, 'base64').toString('utf8');
    const separator = decoded.indexOf(':');
    return separator < 0 ? null : decoded.slice(separator + 1);
  }
  return null;
}

/**
 * Builds the X-OAuth-Scopes and X-Accepted-OAuth-Scopes headers. The accepted
 * scopes of /user and /user/emails are not documented, so the values that
 * callers pass are assumptions.
 */
function scopeHeaders(token: AccessToken, acceptedScopes: string): Record<string, string> {
  return { 'X-OAuth-Scopes': token.scopes.join(', '), 'X-Accepted-OAuth-Scopes': acceptedScopes };
}

function hasScope(token: AccessToken, scope: string): boolean {
  return token.scopes.some((granted) => granted === scope || INCLUDED_SCOPES[granted]?.includes(scope));
}

/**
 * Renders GET /user. As GitHub documents, a token with read:user (or user)
 * gets the private user fields, and other tokens get the public user.
 */
function renderUser(state: FakeGitHubState, user: FakeGitHubUser, updatedAt: Date, scopes: string[]): Record<string, unknown> {
  const profileUrl = `${state.apiUrl}/users/${user.login}`;
  const isPrivateView = scopes.includes('user') || scopes.includes('read:user');
  const rendered: Record<string, unknown> = {
    login: user.login,
    id: user.id,
    user_view_type: isPrivateView ? 'private' : 'public',
    node_id: Buffer.from(`04:User${user.id}`).toString('base64'),
    avatar_url: `${state.webUrl}/avatars/u/${user.id}?v=4`,
    gravatar_id: '',
    url: profileUrl,
    html_url: `${state.webUrl}/${user.login}`,
    followers_url: `${profileUrl}/followers`,
    following_url: `${profileUrl}/following{/other_user}`,
    gists_url: `${profileUrl}/gists{/gist_id}`,
    starred_url: `${profileUrl}/starred{/owner}{/repo}`,
    subscriptions_url: `${profileUrl}/subscriptions`,
    organizations_url: `${profileUrl}/orgs`,
    repos_url: `${profileUrl}/repos`,
    events_url: `${profileUrl}/events{/privacy}`,
    received_events_url: `${profileUrl}/received_events`,
    type: 'User',
    site_admin: false,
    name: user.name,
    company: null,
    blog: '',
    location: null,
    email: user.email,
    hireable: null,
    bio: null,
    twitter_username: null,
    public_repos: 0,
    public_gists: 0,
    followers: 0,
    following: 0,
    // NOTE: GitHub always sends created_at, which its schema marks required.
    // Omitting it lets tests cover a profile without one.
    ...(user.createdAt === null ? {} : { created_at: formatTimestamp(user.createdAt) }),
    updated_at: formatTimestamp(updatedAt),
  };
  if (isPrivateView) {
    Object.assign(rendered, {
      private_gists: 0,
      total_private_repos: 0,
      owned_private_repos: 0,
      disk_usage: 0,
      collaborators: 0,
      two_factor_authentication: false,
      plan: { name: 'free', space: 976562499, collaborators: 0, private_repos: 10000 },
    });
  }
  return rendered;
}

/** Formats a time as GitHub does, in UTC to the second: 2008-01-14T04:33:35Z. */
function formatTimestamp(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Sends GET /user/emails, paginated with per_page (default 30, max 100) and page as GitHub documents. */
function sendEmails(state: FakeGitHubState, url: URL, response: ServerResponse, user: FakeGitHubUser, token: AccessToken): void {
  const headers = scopeHeaders(token, 'user, user:email');

  if (user.emailsStatus !== undefined) {
    sendApiError(response, user.emailsStatus, errorMessageFor(user.emailsStatus), EMAILS_DOCUMENTATION_URL, headers);
    return;
  }
  // GitHub returns 404, not 403, when an OAuth token lacks the scope.
  if (!hasScope(token, 'user:email')) {
    sendApiError(response, 404, 'Not Found', EMAILS_DOCUMENTATION_URL, headers);
    return;
  }

  const perPage = Math.min(readPositiveInteger(url.searchParams.get('per_page'), 30), 100);
  const page = readPositiveInteger(url.searchParams.get('page'), 1);
  const lastPage = Math.max(1, Math.ceil(user.emails.length / perPage));
  const link = paginationLinks(`${state.apiUrl}/user/emails`, perPage, page, lastPage);
  if (link !== '') {
    headers.Link = link;
  }

  const emails = user.emails.slice((page - 1) * perPage, page * perPage);
  sendJson(
    response,
    200,
    emails.map(({ email, primary, verified, visibility }) => ({ email, primary, verified, visibility })),
    headers,
  );
}

function readPositiveInteger(value: string | null, fallback: number): number {
  const parsed = Number(value);
  return value !== null && Number.isSafeInteger(parsed) && parsed > 0 ? parsed : fallback;
}

/** Builds a Link header in GitHub's order: prev, next, last, first. */
function paginationLinks(baseUrl: string, perPage: number, page: number, lastPage: number): string {
  const pageUrl = (number: number) => `<${baseUrl}?per_page=${perPage}&page=${number}>`;
  const links: string[] = [];
  if (page > 1) {
    links.push(`${pageUrl(Math.min(page - 1, lastPage))}; rel="prev"`);
  }
  if (page < lastPage) {
    links.push(`${pageUrl(page + 1)}; rel="next"`, `${pageUrl(lastPage)}; rel="last"`);
  }
  if (page > 1) {
    links.push(`${pageUrl(1)}; rel="first"`);
  }
  return links.join(', ');
}

/**
 * Returns the `message` that GitHub sends with an HTTP status. GitHub's wording
 * for statuses other than 401 and 404 varies by cause, so the HTTP reason
 * phrase replaces it.
 */
function errorMessageFor(status: number): string {
  if (status === 401) {
    return 'Bad credentials';
  }
  if (status === 404) {
    return 'Not Found';
  }
  return STATUS_CODES[status] ?? 'Error';
}

/** Sends GitHub's REST error body: message, documentation_url and the status as a string. */
function sendApiError(
  response: ServerResponse,
  status: number,
  message: string,
  documentationUrl: string,
  headers: Record<string, string> = {},
): void {
  // A 1xx, 204 or 304 response has no body.
  if (status < 200 || status === 204 || status === 304) {
    response.writeHead(status, headers);
    response.end();
    return;
  }
  sendJson(response, status, { message, documentation_url: documentationUrl, status: String(status) }, headers);
}

// ---------------------------------------------------------------------------
// Response helpers

function sendJson(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify(value));
}

function sendHtml(response: ServerResponse, status: number, title: string, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  response.end(`<!DOCTYPE html><html><head><title>${escapeXml(title)} · GitHub</title></head><body><p>${escapeXml(text)}</p></body></html>`);
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
