import { listLivePortalSessions } from '@vome/core';
import { now } from '../../lib/clock';
import { getPortal } from '../../lib/portal';
import { requireUser } from '../../lib/session';

function time(value: Date | null): string {
  return value ? value.toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : 'unknown';
}

/** Renders the account: what vome keeps about the person, their live sessions, and sign-out. */
export default async function AccountPage() {
  const user = await requireUser();
  const { db } = await getPortal();
  const sessions = await listLivePortalSessions(db, user.account, now());
  const { account } = user;
  return (
    <>
      <h1>Your account</h1>
      <dl>
        <dt>GitHub login</dt>
        <dd>{account.github_login}</dd>
        <dt>Name</dt>
        <dd>{account.display_name}</dd>
        <dt>Email</dt>
        <dd>{account.email}</dd>
        <dt>GitHub account created</dt>
        <dd>{time(account.github_created_at)}</dd>
        <dt>Last signed in from</dt>
        <dd>{account.signin_address ?? 'unknown'}</dd>
      </dl>
      <h2>Sessions</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Signed in</th>
            <th scope="col">From</th>
            <th scope="col">Ends</th>
            <th scope="col"></th>
          </tr>
        </thead>
        <tbody>
          {sessions.map((session) => (
            <tr key={session.id} data-testid="session">
              <td>{time(session.created_at)}</td>
              <td>{session.source_address ?? 'unknown'}</td>
              <td>{time(session.expires_at)}</td>
              <td>{session.id === user.session.id ? 'this session' : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="inline" method="post" action="/account/sign-out">
        <input type="hidden" name="csrf" value={user.csrfToken} />
        <button type="submit">Sign out</button>
      </form>{' '}
      <form className="inline" method="post" action="/account/sign-out-everywhere">
        <input type="hidden" name="csrf" value={user.csrfToken} />
        <button type="submit">Sign out everywhere</button>
      </form>
    </>
  );
}
