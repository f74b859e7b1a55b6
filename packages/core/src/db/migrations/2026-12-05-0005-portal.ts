import { type Kysely, sql } from 'kysely';

// Frozen: this migration never imports application code, so later changes to
// the code cannot change what it does.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- What the portal keeps of a GitHub account: its numeric id (logins can
    -- be renamed and reused, ids cannot), its creation date, and the address
    -- of the last sign-in. session_version ends every session when raised.
    ALTER TABLE accounts
      ADD COLUMN github_id bigint,
      ADD COLUMN github_created_at timestamptz,
      ADD COLUMN signin_address text,
      ADD COLUMN session_version integer NOT NULL DEFAULT 1;
    CREATE UNIQUE INDEX accounts_github_id_key ON accounts (github_id);

    CREATE TABLE portal_sessions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      account_id uuid NOT NULL REFERENCES accounts (id),
      session_version integer NOT NULL,
      source_address text,
      created_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL,
      ended_at timestamptz,
      CHECK (expires_at > created_at)
    );
    CREATE INDEX portal_sessions_account_idx ON portal_sessions (account_id, created_at DESC);

    -- A server action asked for in the portal: queued as a job, run by the
    -- worker. operation_ids lists the operations it ran (restart runs two).
    CREATE TABLE portal_requests (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      account_id uuid NOT NULL REFERENCES accounts (id),
      server_id uuid REFERENCES servers (id),
      kind text NOT NULL CHECK (kind IN ('create', 'start', 'stop', 'restart')),
      state text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
      actor text NOT NULL,
      source_address text,
      operation_ids uuid[] NOT NULL DEFAULT '{}',
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz,
      CHECK (kind = 'create' OR server_id IS NOT NULL)
    );
    CREATE INDEX portal_requests_server_idx ON portal_requests (server_id, created_at DESC);
    CREATE INDEX portal_requests_account_idx ON portal_requests (account_id, created_at DESC);

    -- The counters of rate-limiter-flexible's PostgreSQL store, in the
    -- layout that library creates (expire in epoch milliseconds), so that
    -- every portal process shares them.
    CREATE TABLE rate_limits (
      key varchar(255) PRIMARY KEY,
      points integer NOT NULL DEFAULT 0,
      expire bigint
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE rate_limits;
    DROP TABLE portal_requests;
    DROP TABLE portal_sessions;
    DROP INDEX accounts_github_id_key;
    ALTER TABLE accounts
      DROP COLUMN github_id,
      DROP COLUMN github_created_at,
      DROP COLUMN signin_address,
      DROP COLUMN session_version;
  `.execute(db);
}
