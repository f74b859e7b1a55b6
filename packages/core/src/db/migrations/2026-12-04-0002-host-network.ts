import { type Kysely, sql } from 'kysely';

// Frozen: this migration never imports application code, so later changes to
// the code cannot change what it does.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- The edge of each host: where VM traffic leaves, the HTTPS domain, the
    -- certificate, nginx's files, and the ranges for per-server WireGuard.
    -- An empty uplink or HA domain means the host's network is not set up yet.
    ALTER TABLE hosts
      ADD COLUMN uplink text NOT NULL DEFAULT '',
      ADD COLUMN ha_domain text NOT NULL DEFAULT '',
      ADD COLUMN tls_certificate_path text NOT NULL DEFAULT '/etc/vome/tls/fullchain.pem',
      ADD COLUMN tls_key_path text NOT NULL DEFAULT '/etc/vome/tls/privkey.pem',
      ADD COLUMN nginx_site_path text NOT NULL DEFAULT '/etc/nginx/conf.d/vome.conf',
      ADD COLUMN nginx_main_config_path text NOT NULL DEFAULT '/etc/nginx/nginx.conf',
      ADD COLUMN tunnel_network cidr NOT NULL DEFAULT '10.100.0.0/16',
      ADD COLUMN tunnel_port_start integer NOT NULL DEFAULT 51820 CHECK (tunnel_port_start BETWEEN 1024 AND 65535);

    -- A server's slot picks its WireGuard interface, listen port, routing
    -- table and /24 on its host. Only its public key is stored: the private
    -- key lives on the host alone.
    ALTER TABLE servers
      ADD COLUMN tunnel_slot integer CHECK (tunnel_slot >= 0),
      ADD COLUMN tunnel_public_key text;
    CREATE UNIQUE INDEX servers_tunnel_slot_key ON servers (host_id, tunnel_slot) WHERE tunnel_slot IS NOT NULL;

    CREATE TABLE tunnel_peers (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      server_id uuid NOT NULL REFERENCES servers (id),
      name text NOT NULL,
      public_key text NOT NULL,
      ipv4 inet NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (server_id, name),
      UNIQUE (server_id, public_key),
      UNIQUE (server_id, ipv4)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE tunnel_peers;
    DROP INDEX servers_tunnel_slot_key;
    ALTER TABLE servers DROP COLUMN tunnel_slot, DROP COLUMN tunnel_public_key;
    ALTER TABLE hosts
      DROP COLUMN uplink,
      DROP COLUMN ha_domain,
      DROP COLUMN tls_certificate_path,
      DROP COLUMN tls_key_path,
      DROP COLUMN nginx_site_path,
      DROP COLUMN nginx_main_config_path,
      DROP COLUMN tunnel_network,
      DROP COLUMN tunnel_port_start;
  `.execute(db);
}
