import { type Kysely, sql } from 'kysely';

// Frozen: this migration never imports application code, so later changes to
// the code cannot change what it does.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- Redemption codes are stored as SHA-256 hashes: the code itself is shown
    -- once, when it is made. The prefix lets an admin name a code.
    CREATE TABLE redemption_codes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code_hash text NOT NULL UNIQUE CHECK (code_hash ~ '^[0-9a-f]{64}$'),
      prefix text NOT NULL UNIQUE,
      plan text NOT NULL,
      trial_days integer NOT NULL CHECK (trial_days BETWEEN 1 AND 365),
      max_uses integer NOT NULL CHECK (max_uses BETWEEN 1 AND 100000),
      uses integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE code_redemptions (
      code_id uuid NOT NULL REFERENCES redemption_codes (id),
      account_id uuid NOT NULL REFERENCES accounts (id),
      source_address text,
      redeemed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (code_id, account_id)
    );

    CREATE TABLE subscriptions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      account_id uuid NOT NULL REFERENCES accounts (id),
      plan text NOT NULL,
      status text NOT NULL CHECK (status IN ('trial', 'active', 'past_due', 'cancelled')),
      trial_ends_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (status <> 'trial' OR trial_ends_at IS NOT NULL)
    );
    -- At most one subscription per account that is not cancelled.
    CREATE UNIQUE INDEX subscriptions_one_current_key ON subscriptions (account_id) WHERE status <> 'cancelled';
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE subscriptions;
    DROP TABLE code_redemptions;
    DROP TABLE redemption_codes;
  `.execute(db);
}
