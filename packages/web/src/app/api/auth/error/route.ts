import { getPortal } from '../../../../lib/portal';

/**
 * next-auth sends the browser here when sign-in fails inside it (a bad or
 * replayed `state`, a failed code exchange). The sign-in page then shows that sign-in failed.
 */
export async function GET(request: Request): Promise<Response> {
  const portal = await getPortal();
  const code = new URL(request.url).searchParams.get('error') ?? 'unknown';
  portal.logger.warn({ code: code.slice(0, 100) }, 'sign-in failed inside next-auth');
  return new Response(null, { status: 303, headers: { location: `${portal.config.portalUrl}/signin?error=failed`, 'cache-control': 'no-store' } });
}
