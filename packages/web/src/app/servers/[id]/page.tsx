import { ForbiddenError, getServerForActor, NotFoundError } from '@vome/core';
import { notFound } from 'next/navigation';
import { getPortal } from '../../../lib/portal';
import { requireUser } from '../../../lib/session';

function time(value: Date | string | null): string {
  return value ? new Date(value).toISOString().slice(0, 19).replace('T', ' ') : '';
}

/** Renders one server: its address and state, start/stop/restart, and its recent requests and operations. */
export default async function ServerPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await requireUser();
  const { db } = await getPortal();
  let server;
  try {
    server = await getServerForActor(db, user.actor, id);
  } catch (error) {
    if (error instanceof ForbiddenError || error instanceof NotFoundError) {
      notFound();
    }
    throw error;
  }
  const busy = server.requests.some((request) => request.state === 'queued' || request.state === 'running') || server.operations.some((operation) => operation.state === 'running');
  const actions = [
    { action: 'start', label: 'Start', enabled: server.state === 'stopped' },
    { action: 'stop', label: 'Stop', enabled: server.state === 'running' },
    { action: 'restart', label: 'Restart', enabled: server.state === 'running' },
  ];
  return (
    <>
      {busy ? <meta httpEquiv="refresh" content="3" /> : null}
      <h1>{server.name}</h1>
      <dl>
        <dt>State</dt>
        <dd data-testid="state">{server.state}</dd>
        <dt>Address</dt>
        <dd>{server.url ? <a href={server.url}>{server.url}</a> : 'not yet routed'}</dd>
        <dt>Host</dt>
        <dd>{server.hostName}</dd>
      </dl>
      <h2>Control</h2>
      {actions.map(({ action, label, enabled }) => (
        <form key={action} className="inline" method="post" action={`/servers/${server.id}/${action}`}>
          <input type="hidden" name="csrf" value={user.csrfToken} />
          <button type="submit" disabled={!enabled || busy}>
            {label}
          </button>{' '}
        </form>
      ))}
      {busy ? (
        <p className="notice" role="status">
          An action is in progress. This page refreshes itself.
        </p>
      ) : null}
      <h2>Recent requests</h2>
      {server.requests.length === 0 ? (
        <p>None yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Requested</th>
              <th scope="col">Action</th>
              <th scope="col">State</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {server.requests.map((request) => (
              <tr key={request.id}>
                <td>{time(request.createdAt)}</td>
                <td>{request.kind}</td>
                <td data-testid="request-state">{request.state}</td>
                <td>{request.error ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Recent operations</h2>
      {server.operations.map((operation) => (
        <section key={operation.id} aria-label={`${operation.kind} operation`}>
          <h3>
            {operation.kind}: {operation.state} <span className="muted">{time(operation.createdAt)}</span>
          </h3>
          <ol>
            {operation.steps.map((step) => (
              <li key={step.name}>
                {step.name}: {step.state}
              </li>
            ))}
          </ol>
        </section>
      ))}
    </>
  );
}
