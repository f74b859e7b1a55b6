import { currentSubscription, isEntitled, listPortalRequests, listServersForActor } from '@vome/core';
import { now } from '../../lib/clock';
import { getPortal } from '../../lib/portal';
import { requireUser } from '../../lib/session';

/** Renders the customer's servers with their state, and whether their trial or subscription is active. */
export default async function Dashboard() {
  const user = await requireUser();
  const { db } = await getPortal();
  const servers = await listServersForActor(db, user.actor);
  const subscription = await currentSubscription(db, user.account.id);
  const requests = await listPortalRequests(db, { accountId: user.account.id }, 5);
  const pending = requests.filter((request) => request.state === 'queued' || request.state === 'running');
  const failedCreate = requests.find((request) => request.kind === 'create' && request.state === 'failed');
  return (
    <>
      {pending.length > 0 ? <meta httpEquiv="refresh" content="5" /> : null}
      <h1>Your servers</h1>
      {!user.isAdmin && !isEntitled(subscription, now()) ? (
        <p className="error" role="status">
          You have no active trial or subscription. <a href="/redeem">Redeem a code</a> to start one.
        </p>
      ) : null}
      {subscription?.status === 'trial' && subscription.trial_ends_at ? (
        <p className="muted">
          Trial of plan {subscription.plan}, ends {subscription.trial_ends_at.toISOString().slice(0, 16).replace('T', ' ')} UTC.
        </p>
      ) : null}
      {pending.some((request) => request.kind === 'create') ? (
        <p className="notice" role="status">
          Your server is being created. This page refreshes itself.
        </p>
      ) : null}
      {failedCreate && servers.length === 0 ? (
        <p className="error" role="alert">
          Creating your server failed: {failedCreate.error}
        </p>
      ) : null}
      {servers.length === 0 ? (
        <p>You have no servers yet.</p>
      ) : (
        <table>
          <caption className="muted">{user.isAdmin ? 'Every server (you are an admin)' : 'Servers in your account'}</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Address</th>
              {user.isAdmin ? <th scope="col">Owner</th> : null}
            </tr>
          </thead>
          <tbody>
            {servers.map((server) => (
              <tr key={server.id} data-server={server.name}>
                <td>
                  <a href={`/servers/${server.id}`}>{server.name}</a>
                </td>
                <td data-testid="state">{server.state}</td>
                <td>{server.url ? <a href={server.url}>{server.url}</a> : <span className="muted">not yet routed</span>}</td>
                {user.isAdmin ? <td>{server.ownerLogin}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
