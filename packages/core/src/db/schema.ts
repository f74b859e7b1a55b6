import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** A timestamptz column: read as Date, written as Date or left to the default. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** int8 columns come back from pg as strings; vome keeps them as strings. */
type BigIntText = ColumnType<string, string | number | bigint, string | number | bigint>;

export interface AccountsTable {
  id: Generated<string>;
  github_login: string;
  display_name: string;
  email: string;
  /** GitHub's numeric user id; null for an account an admin added that has not signed in. */
  github_id: ColumnType<string | null, string | number | null | undefined, string | number | null>;
  github_created_at: NullableTimestamp;
  /** The client address of the last portal sign-in. */
  signin_address: string | null;
  /** Raising it ends every portal session of the account. */
  session_version: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export type HostTransport = 'ssh' | 'local';
export type VirtType = 'kvm' | 'qemu';

export interface HostsTable {
  id: Generated<string>;
  name: string;
  transport: HostTransport;
  ssh_address: string | null;
  ssh_port: number | null;
  ssh_user: string | null;
  /** Pinned host key as OpenSSH prints it: "ssh-ed25519 AAAA…". */
  host_key: string | null;
  host_key_sha256: string | null;
  bridge: string;
  /** The bridge's own address with its prefix, e.g. 10.232.0.1/24. */
  bridge_cidr: string;
  range_start: string;
  range_end: string;
  virt_type: VirtType;
  data_dir: string;
  ovmf_code: string;
  ovmf_vars: string;
  vcpus: number;
  memory_mib: number;
  /** The interface that leads to the internet; empty until set. */
  uplink: Generated<string>;
  /** Servers are reached at https://<subdomain>.<ha_domain>. Empty until set. */
  ha_domain: Generated<string>;
  tls_certificate_path: Generated<string>;
  tls_key_path: Generated<string>;
  nginx_site_path: Generated<string>;
  nginx_main_config_path: Generated<string>;
  /** Per-server WireGuard /24s are cut from this network, e.g. 10.100.0.0/16. */
  tunnel_network: Generated<string>;
  /** Listen port of slot 0; slot n listens on start + n. */
  tunnel_port_start: Generated<number>;
  /** Comma-separated networks VMs may not reach through the uplink; empty for none. */
  blocked_networks: Generated<string>;
  created_at: Timestamp;
  checked_at: NullableTimestamp;
  removed_at: NullableTimestamp;
}

export interface ImagesTable {
  id: Generated<string>;
  name: string;
  format: string;
  virtual_size_bytes: BigIntText;
  file_size_bytes: BigIntText;
  /** SHA-256 of the decompressed image file, as placed on hosts. */
  sha256: string;
  source: string;
  created_at: Timestamp;
}

export interface ImagePlacementsTable {
  image_id: string;
  host_id: string;
  path: string;
  placed_at: Timestamp;
}

export type ServerState =
  | 'provisioning'
  | 'running'
  | 'stopped'
  | 'suspended'
  | 'rebuilding'
  | 'destroying'
  | 'destroyed'
  | 'failed';

export interface ServersTable {
  id: Generated<string>;
  name: string;
  subdomain: string;
  account_id: string;
  host_id: string;
  image_id: string;
  vcpus: number;
  memory_mib: number;
  disk_gib: number;
  mac: string;
  ipv4: string;
  ha_port: Generated<number>;
  /** Picks the server's WireGuard interface, port, table and /24 on its host. */
  tunnel_slot: number | null;
  tunnel_public_key: string | null;
  state: ServerState;
  suspended_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
  destroyed_at: NullableTimestamp;
}

export interface AddressAllocationsTable {
  host_id: string;
  ipv4: string;
  server_id: string;
  allocated_at: Timestamp;
}

export type OperationKind = 'create' | 'start' | 'stop' | 'suspend' | 'resume' | 'rebuild' | 'destroy';
export type OperationState = 'running' | 'succeeded' | 'failed' | 'superseded';
export type StepState = 'pending' | 'running' | 'done' | 'failed';

export interface StepRecord {
  name: string;
  state: StepState;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

export interface OperationsTable {
  id: Generated<string>;
  server_id: string;
  kind: OperationKind;
  state: OperationState;
  steps: ColumnType<StepRecord[], string, string>;
  actor: string;
  attempts: Generated<number>;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: NullableTimestamp;
}

export interface TunnelPeersTable {
  id: Generated<string>;
  server_id: string;
  name: string;
  public_key: string;
  ipv4: string;
  created_at: Timestamp;
}

export interface RedemptionCodesTable {
  id: Generated<string>;
  /** SHA-256 of the code, hex; the code itself is never stored. */
  code_hash: string;
  /** The code's first characters, unique, so an admin can name it. */
  prefix: string;
  plan: string;
  trial_days: number;
  max_uses: number;
  uses: Generated<number>;
  expires_at: Timestamp;
  revoked_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface CodeRedemptionsTable {
  code_id: string;
  account_id: string;
  source_address: string | null;
  redeemed_at: Timestamp;
}

export type SubscriptionStatus = 'trial' | 'active' | 'past_due' | 'cancelled';

export interface SubscriptionsTable {
  id: Generated<string>;
  account_id: string;
  plan: string;
  status: SubscriptionStatus;
  trial_ends_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PortalSessionsTable {
  id: Generated<string>;
  account_id: string;
  session_version: number;
  source_address: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  ended_at: NullableTimestamp;
}

export type PortalRequestKind = 'create' | 'start' | 'stop' | 'restart';
export type PortalRequestState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface PortalRequestsTable {
  id: Generated<string>;
  account_id: string;
  server_id: string | null;
  kind: PortalRequestKind;
  state: PortalRequestState;
  /** The actor as "kind:id", the form stored on operations. */
  actor: string;
  source_address: string | null;
  operation_ids: ColumnType<string[], string[] | undefined, string[]>;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: NullableTimestamp;
}

export interface AuditEventsTable {
  id: ColumnType<string, never, never>;
  occurred_at: Timestamp;
  actor_kind: string;
  actor_id: string;
  action: string;
  target_kind: string;
  target_id: string;
  source_address: string | null;
  details: ColumnType<Record<string, unknown>, string, string>;
  prev_hash: string;
  hash: string;
}

/** vome's database schema, as Kysely types it. */
export interface Database {
  accounts: AccountsTable;
  hosts: HostsTable;
  images: ImagesTable;
  image_placements: ImagePlacementsTable;
  servers: ServersTable;
  address_allocations: AddressAllocationsTable;
  operations: OperationsTable;
  tunnel_peers: TunnelPeersTable;
  redemption_codes: RedemptionCodesTable;
  code_redemptions: CodeRedemptionsTable;
  subscriptions: SubscriptionsTable;
  portal_sessions: PortalSessionsTable;
  portal_requests: PortalRequestsTable;
  audit_events: AuditEventsTable;
}

export type Account = Selectable<AccountsTable>;
export type Host = Selectable<HostsTable>;
export type NewHost = Insertable<HostsTable>;
export type Image = Selectable<ImagesTable>;
export type Server = Selectable<ServersTable>;
export type ServerUpdate = Updateable<ServersTable>;
export type TunnelPeer = Selectable<TunnelPeersTable>;
export type RedemptionCode = Selectable<RedemptionCodesTable>;
export type Subscription = Selectable<SubscriptionsTable>;
export type Operation = Selectable<OperationsTable>;
export type AuditEvent = Selectable<AuditEventsTable>;
export type PortalSession = Selectable<PortalSessionsTable>;
export type PortalRequest = Selectable<PortalRequestsTable>;
