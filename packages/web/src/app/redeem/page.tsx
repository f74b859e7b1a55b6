import { requireUser } from '../../lib/session';

/** Renders the form to redeem a code, which starts a trial and creates the customer's server. */
export default async function Redeem() {
  const user = await requireUser();
  return (
    <>
      <h1>Redeem a code</h1>
      <form method="post" action="/codes/redeem">
        <input type="hidden" name="csrf" value={user.csrfToken} />
        <label htmlFor="code">Code</label>
        <input id="code" name="code" type="text" required autoComplete="off" spellCheck={false} aria-describedby="code-help" />
        <p id="code-help" className="muted">
          Four groups of five letters and digits, for example ABCDE-12345-FGHJK-67890. Case and hyphens do not matter.
        </p>
        <button type="submit">Redeem</button>
      </form>
    </>
  );
}
