import { describeSignInRefusal, isValidHmacTag, type SignInRefusal } from '@vome/core';
import { redirect } from 'next/navigation';
import { getPortal } from '../../lib/portal';
import { currentUser } from '../../lib/session';

const REFUSALS = new Set(['profile_unreadable', 'emails_unreadable', 'no_verified_primary_email', 'creation_date_missing', 'account_too_new']);

function refusalMessage(reason: string | undefined, eligible: string | undefined, eligibleSigned: boolean): string | undefined {
  if (reason === 'login_taken') {
    return 'Your GitHub login is linked to another GitHub account here. Please contact support.';
  }
  if (!reason || !REFUSALS.has(reason)) {
    return undefined;
  }
  if (reason === 'account_too_new') {
    const eligibleAt = new Date(eligible ?? '');
    if (!eligibleSigned || Number.isNaN(eligibleAt.getTime())) {
      return 'Your GitHub account is too new to sign up.';
    }
    return describeSignInRefusal({ reason, eligibleAt });
  }
  return describeSignInRefusal({ reason } as SignInRefusal);
}

/** Renders the sign-in page: one button, and the reason when GitHub sign-in was refused. */
export default async function SignIn({ searchParams }: { searchParams: Promise<Record<string, string | undefined>> }) {
  const params = await searchParams;
  if (await currentUser()) {
    redirect('/dashboard');
  }
  const { config } = await getPortal();
  const eligibleSigned = params.eligible !== undefined && isValidHmacTag(config.sessionSecret, 'eligible', params.eligible, params.signature);
  const refusal = refusalMessage(params.refused, params.eligible, eligibleSigned);
  const failed = params.error !== undefined && refusal === undefined;
  return (
    <>
      <h1>Sign in</h1>
      {refusal ? (
        <p className="error" role="alert" id="refusal">
          {refusal}
        </p>
      ) : null}
      {failed ? (
        <p className="error" role="alert">
          Sign-in with GitHub did not complete. Please try again.
        </p>
      ) : null}
      <p>vome hosts your Home Assistant. Sign in with your GitHub account to see and control your server.</p>
      <form method="post" action="/signin/github">
        <button type="submit">Sign in with GitHub</button>
      </form>
      <p className="muted">
        We keep your GitHub id, login, display name, account creation date, primary email and the address you sign in from. <a href="/about">About vome</a>
      </p>
    </>
  );
}
