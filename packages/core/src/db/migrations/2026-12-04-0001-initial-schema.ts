import { type Kysely, sql } from 'kysely';

// Frozen: this migration never imports application code, so later changes to
// the code cannot change what it does.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE accounts (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      github_login text NOT NULL,
      display_name text NOT NULL,
      email text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX accounts_github_login_key ON accounts (lower(github_login));

    CREATE TABLE hosts (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL,
      transport text NOT NULL CHECK (transport IN ('ssh', 'local')),
      ssh_address text,
      ssh_port integer CHECK (ssh_port BETWEEN 1 AND 65535),
      ssh_user text,
      host_key text,
      host_key_sha256 text,
      bridge text NOT NULL,
      bridge_cidr inet NOT NULL,
      range_start inet NOT NULL,
      range_end inet NOT NULL,
      virt_type text NOT NULL CHECK (virt_type IN ('kvm', 'qemu')),
      data_dir text NOT NULL,
      ovmf_code text NOT NULL,
      ovmf_vars text NOT NULL,
      vcpus integer NOT NULL CHECK (vcpus > 0),
      memory_mib integer NOT NULL CHECK (memory_mib > 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      checked_at timestamptz,
      -- A removed host keeps its record for the servers that once ran on it.
      removed_at timestamptz,
      CHECK (transport = 'local' OR (ssh_address IS NOT NULL AND ssh_port IS NOT NULL AND ssh_user IS NOT NULL AND host_key IS NOT NULL)),
      CHECK (range_start <= range_end)
    );
    CREATE UNIQUE INDEX hosts_name_live_key ON hosts (name) WHERE removed_at IS NULL;

    CREATE TABLE images (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL UNIQUE,
      format text NOT NULL,
      virtual_size_bytes bigint NOT NULL CHECK (virtual_size_bytes > 0),
      file_size_bytes bigint NOT NULL CHECK (file_size_bytes > 0),
      sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
      source text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE image_placements (
      image_id uuid NOT NULL REFERENCES images (id),
      host_id uuid NOT NULL REFERENCES hosts (id),
      path text NOT NULL,
      placed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (image_id, host_id)
    );

    CREATE TABLE servers (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL,
      subdomain text NOT NULL,
      account_id uuid NOT NULL REFERENCES accounts (id),
      host_id uuid NOT NULL REFERENCES hosts (id),
      image_id uuid NOT NULL REFERENCES images (id),
      vcpus integer NOT NULL CHECK (vcpus > 0),
      memory_mib integer NOT NULL CHECK (memory_mib > 0),
      disk_gib integer NOT NULL CHECK (disk_gib > 0),
      mac macaddr NOT NULL,
      ipv4 inet NOT NULL,
      ha_port integer NOT NULL DEFAULT 8123 CHECK (ha_port BETWEEN 1 AND 65535),
      state text NOT NULL CHECK (state IN ('provisioning', 'running', 'stopped', 'suspended', 'rebuilding', 'destroying', 'destroyed', 'failed')),
      suspended_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      destroyed_at timestamptz
    );
    -- A destroyed server keeps its record for the audit trail; its name,
    -- subdomain and MAC become free again.
    CREATE UNIQUE INDEX servers_name_live_key ON servers (name) WHERE state <> 'destroyed';
    CREATE UNIQUE INDEX servers_subdomain_live_key ON servers (subdomain) WHERE state <> 'destroyed';
    CREATE UNIQUE INDEX servers_mac_live_key ON servers (mac) WHERE state <> 'destroyed';
    CREATE INDEX servers_account_idx ON servers (account_id);

    CREATE TABLE address_allocations (
      host_id uuid NOT NULL REFERENCES hosts (id),
      ipv4 inet NOT NULL,
      server_id uuid NOT NULL UNIQUE REFERENCES servers (id),
      allocated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (host_id, ipv4)
    );

    CREATE TABLE operations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      server_id uuid NOT NULL REFERENCES servers (id),
      kind text NOT NULL CHECK (kind IN ('create', 'start', 'stop', 'suspend', 'resume', 'rebuild', 'destroy')),
      state text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'superseded')),
      steps jsonb NOT NULL,
      actor text NOT NULL,
      attempts integer NOT NULL DEFAULT 1,
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz
    );
    -- At most one unfinished operation per server.
    CREATE UNIQUE INDEX operations_one_unfinished_key ON operations (server_id) WHERE state IN ('running', 'failed');
    CREATE INDEX operations_server_idx ON operations (server_id, created_at);

    CREATE TABLE audit_events (
      id bigserial PRIMARY KEY,
      occurred_at timestamptz NOT NULL,
      actor_kind text NOT NULL,
      actor_id text NOT NULL,
      action text NOT NULL,
      target_kind text NOT NULL,
      target_id text NOT NULL,
      source_address text,
      details jsonb NOT NULL,
      prev_hash text NOT NULL,
      hash text NOT NULL UNIQUE
    );

    -- Append-only: the application never updates or deletes an event. The
    -- hash chain catches an edit made by someone who disables this trigger.
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP;
    END;
    $$;
    CREATE TRIGGER audit_events_append_only
      BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE audit_events;
    DROP FUNCTION audit_events_append_only();
    DROP TABLE operations;
    DROP TABLE address_allocations;
    DROP TABLE servers;
    DROP TABLE image_placements;
    DROP TABLE images;
    DROP TABLE hosts;
    DROP TABLE accounts;
  `.execute(db);
}
