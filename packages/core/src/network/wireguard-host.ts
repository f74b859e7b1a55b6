import { InvalidInputError } from '../errors/index.js';
import { type Ipv4Network, ipv4ToNumber, numberToIpv4, parseCidr } from '../naming/ipv4.js';
import { type CommandRunner, SCRIPT_PRELUDE, shellQuote as q } from '../runner/command-runner.js';
import type { NetworkModel, NetworkServer, NetworkTunnel, PlanChange } from './network-model.js';
import { publicKeyOf, requireWireguardKey } from './wireguard-keys.js';

// A server's tunnel is a WireGuard interface whose peers reach exactly one VM:
// `ip rule`s send what arrives on the interface, and what is addressed to the
// tunnel network, to the tunnel's own routing table. That table contains the
// tunnel network, the VM's /32 on the bridge and `unreachable default`.
// Nothing is added to the host's main table: the interface address carries
// `noprefixroute`, `wg` installs no routes for AllowedIPs (wg-quick would),
// and IPv6 address generation is off on the interface.

/** Prefix of every interface vome creates. The apply never touches other interfaces. */
export const WIREGUARD_INTERFACE_PREFIX = 'vwg';

/** The WireGuard implementation behind an interface: the kernel module, or wireguard-go on a TUN device. */
export type WireguardImplementation = 'kernel' | 'wireguard-go';

export interface WireguardPeerState {
  publicKey: string;
  /** Sorted, e.g. ["10.100.3.2/32"]. */
  allowedIps: string[];
}

export interface WireguardInterfaceState {
  name: string;
  /** null in a rendered desired state, and for a vwg link that is neither kind. */
  implementation: WireguardImplementation | null;
  up: boolean;
  listenPort: number | null;
  publicKey: string | null;
  /** IPv4 addresses with prefix, and " noprefixroute" when set: "10.100.3.1/24 noprefixroute". */
  addresses: string[];
  /** Sorted by public key. */
  peers: WireguardPeerState[];
}

/** A routing table that a tunnel uses, or that a rule of a vwg interface looks up. */
export interface WireguardTableState {
  table: number;
  /** Sorted, as `ip -4 route show table N` prints them, without linkdown or dead: "unreachable default". */
  routes: string[];
  /** Sorted `ip -4 rule` lines that look the table up: "10003: from all iif vwg51823 lookup 51823". */
  rules: string[];
}

/** The WireGuard side of a host's network. Private keys are never part of it. */
export interface WireguardState {
  /** vwg interfaces, sorted by name. */
  interfaces: WireguardInterfaceState[];
  /** Sorted by table number. */
  tables: WireguardTableState[];
}

/** An interface that an apply created, and how it runs. */
export interface CreatedInterface {
  interface: string;
  implementation: WireguardImplementation;
}

export interface WireguardApplyResult {
  changed: boolean;
  /** Changes the apply made, one line each, e.g. "create interface vwg51820". */
  actions: string[];
  created: CreatedInterface[];
}

/** Name of the script that `applyWireguard` keeps in the host's network folder. */
export const RESTORE_SCRIPT_NAME = 'restore-wireguard.sh';

/** Folder of wireguard-go's control sockets, shared by all network namespaces. */
const WIREGUARD_GO_SOCKETS = '/var/run/wireguard';

const INTERFACE_NAME = /^vwg[a-z0-9-]{1,12}$/;
const BRIDGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const SAFE_PATH = /^\/[A-Za-z0-9_.,@%+=:/-]*$/;

/** Table numbers that name the kernel's own tables: unspec, default, main and local. */
const RESERVED_TABLES = new Set([0, 253, 254, 255]);
const MAX_TABLE = 2 ** 32 - 1;
/** Rule priority of the main table's lookup. A tunnel's rules must come before it. */
const MAIN_RULE_PRIORITY = 32_766;

/** Returns the path of the restore script in a host's network folder. */
export function restoreScriptPath(model: NetworkModel): string {
  return `${model.host.networkDir}/${RESTORE_SCRIPT_NAME}`;
}

/**
 * Writes a tunnel's private key to `tunnel.privateKeyPath` atomically: folder
 * 0700, file 0600. The key travels inside the script on bash's standard
 * input, never on a command line, and no error message quotes it.
 *
 * @throws InvalidInputError when the key is invalid or is not the private key
 *   of `tunnel.publicKey`.
 */
export async function writeTunnelKey(runner: CommandRunner, tunnel: NetworkTunnel, privateKey: string): Promise<void> {
  requireWireguardKey(privateKey, `private key of ${tunnel.interface}`);
  if (publicKeyOf(privateKey) !== tunnel.publicKey) {
    throw new InvalidInputError(`the private key given for ${tunnel.interface} does not belong to its public key ${tunnel.publicKey}`, {
      hints: ['write the private key of the pair whose public key the tunnel stores, or store the new public key with it'],
    });
  }
  requireSafePath(tunnel.privateKeyPath, `private key path of ${tunnel.interface}`);

  await runner.run(
    `file=${q(tunnel.privateKeyPath)}
dir=$(dirname "$file")
mkdir -p "$dir"
chmod 0700 "$dir"
tmp="$dir/.$(basename "$file").tmp"
rm -f "$tmp"
cat > "$tmp" <<'VOME_WIREGUARD_KEY'
${privateKey}
VOME_WIREGUARD_KEY
chmod 0600 "$tmp"
mv -f "$tmp" "$file"`,
    { label: 'write-wireguard-key', timeoutMs: 30_000 },
  );
}

/**
 * Reads the host's vwg interfaces (implementation, state, listen port, public
 * key, peers, addresses), the routing tables of the model's tunnels and of
 * every vwg rule, and the `ip rule`s that look those tables up. One round trip.
 */
export async function readWireguard(runner: CommandRunner, model: NetworkModel): Promise<WireguardState> {
  const tables = tunnelsOf(model).map(({ tunnel }) => tunnel.table);
  const result = await runner.run(`${SHELL_FUNCTIONS}\nwg_read ${q(tables.join(' '))}\n`, {
    label: 'read-wireguard',
    timeoutMs: 60_000,
  });
  return parseWireguardState(result.stdout);
}

/**
 * Renders the WireGuard state a host should have, in the form `readWireguard`
 * returns, with `implementation` null.
 *
 * @throws InvalidInputError when a tunnel in the model is invalid (see
 *   `requireValidTunnels`).
 */
export function renderWireguardState(model: NetworkModel): WireguardState {
  requireValidTunnels(model);
  const interfaces: WireguardInterfaceState[] = [];
  const tables: WireguardTableState[] = [];

  for (const { server, tunnel } of tunnelsOf(model)) {
    interfaces.push({
      name: tunnel.interface,
      implementation: null,
      up: true,
      listenPort: tunnel.listenPort,
      publicKey: tunnel.publicKey,
      addresses: [`${tunnel.address}/24 noprefixroute`],
      peers: tunnel.peers
        .map((peer) => ({ publicKey: peer.publicKey, allowedIps: [`${peer.address}/32`] }))
        .sort((left, right) => compare(left.publicKey, right.publicKey)),
    });
    tables.push({
      table: tunnel.table,
      routes: [`${tunnel.network} dev ${tunnel.interface} scope link`, `${server.ipv4} dev ${model.host.bridge} scope link`, 'unreachable default'].sort(compare),
      rules: [
        `${tunnel.rulePriority}: from all iif ${tunnel.interface} lookup ${tunnel.table}`,
        `${tunnel.rulePriority}: from all to ${tunnel.network} lookup ${tunnel.table}`,
      ].sort(compare),
    });
  }
  return {
    interfaces: interfaces.sort((left, right) => compare(left.name, right.name)),
    tables: tables.sort((left, right) => left.table - right.table),
  };
}

/**
 * Lists what differs between the model's tunnels and the host: interfaces,
 * their listen port and public key, state, address and peers, routes and
 * rules. A changed listen port or public key is a `remove` of the host's line
 * and an `add` of the model's. Removals come first.
 *
 * @example
 * diffWireguard(model, await readWireguard(runner, model))
 * // [{ part: 'wireguard', action: 'add', item: 'interface vwg51820 peer "phone" Pz…= allowed-ips 10.100.0.2/32' }]
 */
export function diffWireguard(desired: NetworkModel, actual: WireguardState): PlanChange[] {
  const names = peerNames(desired);
  const want = stateItems(renderWireguardState(desired), names);
  const have = stateItems(actual, new Map());
  const changes: PlanChange[] = [];

  for (const [key, item] of have) {
    if (!want.has(key)) {
      changes.push({ part: 'wireguard', action: 'remove', item });
    }
  }
  for (const [key, item] of want) {
    if (!have.has(key)) {
      changes.push({ part: 'wireguard', action: 'add', item });
    }
  }
  return changes;
}

/**
 * Brings the host's WireGuard interfaces, routing tables and rules in line
 * with the model in one round trip, and keeps `restore-wireguard.sh` in the
 * network folder up to date. It first removes vwg interfaces, rules and
 * tables that the model lacks. Then it creates each missing interface (kernel
 * module, else wireguard-go) and brings it up. It sets the address, key,
 * listen port and exactly the model's peers, the table's routes and the two
 * rules. Changes nothing, and returns `changed: false`, when all is right.
 * Never changes the main routing table.
 *
 * @throws InvalidInputError when the model is invalid.
 * @throws HostCommandError when a key file is missing or belongs to another
 *   public key, when the bridge is missing, or when an interface cannot be
 *   created. Steps done before the failure stay done; run the apply again.
 */
export async function applyWireguard(runner: CommandRunner, model: NetworkModel): Promise<WireguardApplyResult> {
  renderWireguardState(model);
  requireSafePath(model.host.networkDir, 'network folder of the host');

  const restorePath = restoreScriptPath(model);
  const script = `${SHELL_FUNCTIONS}
${renderEnsureCalls(model)}
restore=${q(restorePath)}
mkdir -p "$(dirname "$restore")"
cat > "$restore.tmp" <<'VOME_WIREGUARD_RESTORE'
${wireguardRestoreScript(model)}VOME_WIREGUARD_RESTORE
chmod 0700 "$restore.tmp"
if [ -x "$restore" ] && cmp -s "$restore.tmp" "$restore"; then
  rm -f "$restore.tmp"
else
  mv -f "$restore.tmp" "$restore"
  wg_act "write $restore"
fi
`;
  // Creating 20 wireguard-go interfaces took 1.5 s on a 2-core test machine,
  // so 3 s per tunnel leaves a wide margin.
  const result = await runner.run(script, { label: 'apply-wireguard', timeoutMs: 30_000 + 3_000 * tunnelsOf(model).length });
  return parseApplyOutput(result.stdout);
}

/**
 * Renders the stand-alone script that `applyWireguard` saves as
 * `<networkDir>/restore-wireguard.sh`. Run after a reboot, it recreates the
 * model's interfaces, peers, routes and rules from the key files, exactly as
 * the apply does. It contains public keys and key paths, never a private key.
 */
export function wireguardRestoreScript(model: NetworkModel): string {
  renderWireguardState(model);
  return `#!/bin/bash
# Written by vome's WireGuard apply: recreates this host's tunnels, for
# example after a reboot. Edits are lost at the next apply.
${SCRIPT_PRELUDE}${SHELL_FUNCTIONS}
${renderEnsureCalls(model)}`;
}

/**
 * Checks every tunnel of a model before anything is sent to a host.
 * Interface names start with "vwg". Interface names, listen ports, tables,
 * networks and public keys are unique per host. Tables are not the kernel's
 * own, and rule priorities come before the main table's 32766. Each network
 * is a /24 apart from the bridge network, with the host address inside.
 * Peers have unique keys and unique addresses inside the network, other than
 * the host's, the network's and the broadcast address. Unique addresses
 * matter because WireGuard gives an address claimed twice to the last peer.
 *
 * @throws InvalidInputError naming the tunnel, the value and the rule.
 */
export function requireValidTunnels(model: NetworkModel): void {
  if (!BRIDGE_NAME.test(model.host.bridge)) {
    throw new InvalidInputError(`invalid bridge name "${model.host.bridge}": expected 1–15 letters, digits, ".", "_" or "-"`);
  }
  const bridgeNetwork = parseCidr(model.host.bridgeNetwork);
  const seen = { interfaces: new Set<string>(), ports: new Set<number>(), tables: new Set<number>(), networks: new Set<string>(), keys: new Set<string>() };

  for (const { server, tunnel } of tunnelsOf(model)) {
    const where = `tunnel ${tunnel.interface} of server "${server.name}"`;
    ipv4ToNumber(server.ipv4);
    requireTunnelFields(tunnel, where);
    requireUnique(seen.interfaces, tunnel.interface, `${where}: interface name ${tunnel.interface} is used by another tunnel`);
    requireUnique(seen.ports, tunnel.listenPort, `${where}: listen port ${tunnel.listenPort} is used by another tunnel`);
    requireUnique(seen.tables, tunnel.table, `${where}: routing table ${tunnel.table} is used by another tunnel`);
    requireUnique(seen.networks, tunnel.network, `${where}: network ${tunnel.network} is used by another tunnel`);
    requireUnique(seen.keys, tunnel.publicKey, `${where}: public key ${tunnel.publicKey} is used by another tunnel`);

    const network = parseCidr(tunnel.network);
    if (network.prefix !== 24 || network.address !== numberToIpv4(network.network)) {
      throw new InvalidInputError(`${where}: invalid network "${tunnel.network}": expected a /24 network address such as 10.100.3.0/24`);
    }
    if (network.network <= bridgeNetwork.broadcast && bridgeNetwork.network <= network.broadcast) {
      throw new InvalidInputError(`${where}: network ${tunnel.network} overlaps the bridge network ${model.host.bridgeNetwork}`);
    }
    requireHostAddress(network, tunnel.address, `${where}: host address ${tunnel.address}`);
    requirePeers(tunnel, network, where);
  }
}

function requireTunnelFields(tunnel: NetworkTunnel, where: string): void {
  if (!INTERFACE_NAME.test(tunnel.interface)) {
    throw new InvalidInputError(`${where}: invalid interface name "${tunnel.interface}": expected "vwg" and 1–12 lower-case letters, digits or "-"`);
  }
  if (!Number.isInteger(tunnel.listenPort) || tunnel.listenPort < 1 || tunnel.listenPort > 65_535) {
    throw new InvalidInputError(`${where}: invalid listen port ${tunnel.listenPort}: expected 1–65535`);
  }
  if (!Number.isInteger(tunnel.table) || tunnel.table < 1 || tunnel.table > MAX_TABLE || RESERVED_TABLES.has(tunnel.table)) {
    throw new InvalidInputError(`${where}: invalid routing table ${tunnel.table}: expected 1–${MAX_TABLE} other than 253, 254 and 255 (default, main, local)`);
  }
  if (!Number.isInteger(tunnel.rulePriority) || tunnel.rulePriority < 1 || tunnel.rulePriority >= MAIN_RULE_PRIORITY) {
    throw new InvalidInputError(`${where}: invalid rule priority ${tunnel.rulePriority}: expected 1–${MAIN_RULE_PRIORITY - 1}, before the main table's rule`);
  }
  requireWireguardKey(tunnel.publicKey, `public key of ${where}`);
  requireSafePath(tunnel.privateKeyPath, `private key path of ${where}`);
}

function requirePeers(tunnel: NetworkTunnel, network: Ipv4Network, where: string): void {
  const keys = new Set<string>();
  const addresses = new Set<string>();
  for (const peer of tunnel.peers) {
    const what = `${where}: peer "${peer.name}"`;
    requireWireguardKey(peer.publicKey, `public key of ${what}`);
    if (peer.publicKey === tunnel.publicKey) {
      throw new InvalidInputError(`${what} has the interface's own public key ${peer.publicKey}`);
    }
    requireUnique(keys, peer.publicKey, `${what}: public key ${peer.publicKey} belongs to another peer of the interface`);
    requireHostAddress(network, peer.address, `${what}: address ${peer.address}`);
    if (peer.address === tunnel.address) {
      throw new InvalidInputError(`${what}: address ${peer.address} is the host's own address on the interface`);
    }
    requireUnique(addresses, peer.address, `${what}: address ${peer.address} belongs to another peer of the interface`);
  }
}

function requireHostAddress(network: Ipv4Network, address: string, what: string): void {
  const value = ipv4ToNumber(address);
  if (value <= network.network || value >= network.broadcast) {
    throw new InvalidInputError(`${what} is not a host address of ${numberToIpv4(network.network)}/${network.prefix}`);
  }
}

function requireUnique<T>(seen: Set<T>, value: T, message: string): void {
  if (seen.has(value)) {
    throw new InvalidInputError(message);
  }
  seen.add(value);
}

/** Checks a path that goes into scripts. Besides quoting, this keeps newlines out of the restore script and its output. */
function requireSafePath(path: string, what: string): void {
  if (!SAFE_PATH.test(path) || path.split('/').includes('..')) {
    throw new InvalidInputError(`invalid ${what} "${path}": expected an absolute path of letters, digits and _ . , @ % + = : - without ".."`);
  }
}

function tunnelsOf(model: NetworkModel): { server: NetworkServer; tunnel: NetworkTunnel }[] {
  return model.servers.flatMap((server) => (server.tunnel === null ? [] : [{ server, tunnel: server.tunnel }]));
}

function compare(left: string, right: string): number {
  if (left === right) {
    return 0;
  }
  return left < right ? -1 : 1;
}

/** Maps "<interface> <public key>" to the peer's name, for plan lines. */
function peerNames(model: NetworkModel): Map<string, string> {
  const names = new Map<string, string>();
  for (const { tunnel } of tunnelsOf(model)) {
    for (const peer of tunnel.peers) {
      names.set(`${tunnel.interface} ${peer.publicKey}`, peer.name);
    }
  }
  return names;
}

/** Flattens a state into plan lines, keyed without peer names so that host and model lines compare. */
function stateItems(state: WireguardState, names: Map<string, string>): Map<string, string> {
  const items = new Map<string, string>();
  const add = (key: string, item = key): void => {
    items.set(key, item);
  };

  for (const link of state.interfaces) {
    add(`interface ${link.name} listen-port ${link.listenPort ?? 'none'} public-key ${link.publicKey ?? 'none'}`);
    add(`interface ${link.name} state ${link.up ? 'up' : 'down'}`);
    for (const address of link.addresses) {
      add(`interface ${link.name} address ${address}`);
    }
    for (const peer of link.peers) {
      const allowed = `allowed-ips ${peer.allowedIps.join(',') || 'none'}`;
      const name = names.get(`${link.name} ${peer.publicKey}`);
      const key = `interface ${link.name} peer ${peer.publicKey} ${allowed}`;
      add(key, name === undefined ? key : `interface ${link.name} peer "${name}" ${peer.publicKey} ${allowed}`);
    }
  }
  for (const table of state.tables) {
    for (const route of table.routes) {
      add(`table ${table.table} route ${route}`);
    }
    for (const rule of table.rules) {
      add(`rule ${rule}`);
    }
  }
  return items;
}

/**
 * Parses the output of the read script. Exported for tests.
 *
 * @internal
 */
export function parseWireguardState(output: string): WireguardState {
  const interfaces: WireguardInterfaceState[] = [];
  const tables: WireguardTableState[] = [];
  let rules: string[] = [];
  let link: WireguardInterfaceState | undefined;
  let table: WireguardTableState | undefined;
  let section: 'interface' | 'rules' | 'table' | 'none' = 'none';

  for (const line of output.split('\n')) {
    if (line === '') {
      continue;
    }
    const [word = '', ...rest] = line.split(' ');
    if (word === '@interface') {
      link = { name: rest.join(' '), implementation: null, up: false, listenPort: null, publicKey: null, addresses: [], peers: [] };
      interfaces.push(link);
      section = 'interface';
    } else if (word === '@rules') {
      section = 'rules';
    } else if (word === '@table') {
      table = { table: Number(rest[0]), routes: [], rules: [] };
      tables.push(table);
      section = 'table';
    } else if (section === 'interface' && link !== undefined) {
      readInterfaceLine(link, word, rest, line);
    } else if (section === 'rules') {
      rules.push(line);
    } else if (section === 'table' && table !== undefined) {
      table.routes.push(line);
    }
  }

  rules = rules.sort(compare);
  for (const entry of tables) {
    entry.routes.sort(compare);
    entry.rules = rules.filter((rule) => rule.endsWith(` lookup ${entry.table}`));
  }
  for (const entry of interfaces) {
    entry.addresses.sort(compare);
    entry.peers.sort((left, right) => compare(left.publicKey, right.publicKey));
  }
  // A model table with no routes and no rules is the same as an absent one.
  const used = tables.filter((entry) => entry.routes.length > 0 || entry.rules.length > 0);
  return { interfaces: interfaces.sort((left, right) => compare(left.name, right.name)), tables: used.sort((left, right) => left.table - right.table) };
}

function readInterfaceLine(link: WireguardInterfaceState, word: string, rest: string[], line: string): void {
  if (word === 'link') {
    link.up = /<([^>]*,)?UP[,>]/.test(line);
    if (/ wireguard /.test(`${line} `)) {
      link.implementation = 'kernel';
    } else if (/ tun type tun /.test(line)) {
      link.implementation = 'wireguard-go';
    }
  } else if (word === 'address') {
    link.addresses.push(rest.join(' '));
  } else if (word === 'wireguard') {
    link.publicKey = rest[0] === undefined || rest[0] === '(none)' ? null : rest[0];
    const port = Number(rest[1]);
    link.listenPort = Number.isInteger(port) && port > 0 ? port : null;
  } else if (word === 'peer' && rest[0] !== undefined) {
    const allowed = rest[1] === undefined || rest[1] === '(none)' ? [] : rest[1].split(',').sort(compare);
    link.peers.push({ publicKey: rest[0], allowedIps: allowed });
  }
}

function parseApplyOutput(output: string): WireguardApplyResult {
  const actions: string[] = [];
  const created: CreatedInterface[] = [];
  for (const line of output.split('\n')) {
    if (line.startsWith('action ')) {
      actions.push(line.slice('action '.length));
    } else if (line.startsWith('created ')) {
      const [, name = '', implementation] = line.split(' ');
      created.push({ interface: name, implementation: implementation === 'kernel' ? 'kernel' : 'wireguard-go' });
    }
  }
  return { changed: actions.length > 0, actions, created };
}

/**
 * Renders the part of the apply that the restore script repeats: one
 * `wg_remove_stale` call, then one `wg_ensure_tunnel` call per tunnel.
 */
function renderEnsureCalls(model: NetworkModel): string {
  const tunnels = tunnelsOf(model);
  const names = tunnels.map(({ tunnel }) => tunnel.interface).join(' ');
  const pairs = tunnels.map(({ tunnel }) => `${tunnel.interface}:${tunnel.table}`).join(' ');
  const tables = tunnels.map(({ tunnel }) => tunnel.table).join(' ');
  const lines = ['command -v wg >/dev/null 2>&1 || wg_fail "wg is not installed: install wireguard-tools"', `wg_remove_stale ${q(names)} ${q(pairs)} ${q(tables)}`];

  for (const { server, tunnel } of tunnels) {
    const args = [
      tunnel.interface,
      tunnel.listenPort,
      tunnel.table,
      tunnel.rulePriority,
      tunnel.network,
      `${tunnel.address}/24`,
      tunnel.publicKey,
      tunnel.privateKeyPath,
      server.ipv4,
      model.host.bridge,
      ...tunnel.peers.map((peer) => `${peer.publicKey} ${peer.address}/32`),
    ];
    lines.push(`wg_ensure_tunnel ${args.map(q).join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

// The bash functions that the read, apply and restore scripts share. They
// print "action …" for each change and "created <interface> <kind>" for each
// new interface. Scripts call them at the top level only, so that `set -e`
// stays in force inside them.
const SHELL_FUNCTIONS = `shopt -s inherit_errexit
wg_fail() { printf 'wireguard: %s\\n' "$*" >&2; exit 1; }
wg_act() { printf 'action %s\\n' "$*"; }

# vwg links of this network namespace.
wg_links() { ip -o link show | sed -n 's/^[0-9]*: \\(${WIREGUARD_INTERFACE_PREFIX}[^:@ ]*\\)[:@].*/\\1/p'; }

# IPv4 rules, one line each: "10003: from all iif vwg51823 lookup 51823".
wg_rules() { ip -4 rule show | sed -e 's/[[:space:]]\\{1,\\}/ /g' -e 's/ \\[detached\\]//g' -e 's/ $//'; }

# Sorted routes of table $1 without state flags; a table that does not exist is empty.
wg_routes() {
  local output
  if ! output=$(ip -4 route show table "$1" 2>&1); then
    case "$output" in *'table does not exist'*) return 0 ;; esac
    printf '%s\\n' "$output" >&2
    return 1
  fi
  [ -n "$output" ] || return 0
  printf '%s\\n' "$output" | sed -e 's/ linkdown//g' -e 's/ dead//g' -e 's/[[:space:]]\\{1,\\}/ /g' -e 's/ $//' | sort
}

# IPv4 addresses of link $1: "10.100.3.1/24 noprefixroute".
wg_addresses() {
  ip -o -4 addr show dev "$1" | awk '{
    for (i = 1; i < NF; i++) if ($i == "inet") address = $(i + 1)
    print address ($0 ~ / noprefixroute / ? " noprefixroute" : "")
  }'
}

# Runs \`ip rule $1\` (add or del) on the rule that line $2 of wg_rules describes.
wg_rule_edit() {
  local words
  read -r -a words <<<"\${2#*: }"
  ip rule "$1" pref "\${2%%:*}" "\${words[@]}"
}

# Waits until wireguard-go has ended after its link went away, so that its
# port is free again; it removes its socket on exit. Kernel links have no socket.
wg_wait_socket_gone() {
  local tries
  for tries in $(seq 1 50); do
    [ -S "${WIREGUARD_GO_SOCKETS}/$1.sock" ] || return 0
    sleep 0.1
  done
  wg_fail "wireguard-go of $1 did not end within 5 s after its link was deleted"
}

# $1: model tables. Prints the state for parseWireguardState.
wg_read() {
  local link table
  # Per link rather than \`wg show all\`, because with wireguard-go "all" lists
  # the control sockets of every network namespace on the machine.
  for link in $(wg_links); do
    printf '@interface %s\\n' "$link"
    ip -o -d link show dev "$link" | sed -n '1s/^/link /p'
    wg_addresses "$link" | sed 's/^/address /'
    # The first dump line starts with the private key: only fields 2 and 3 are kept.
    { wg show "$link" dump 2>/dev/null || true; } | awk -F '\\t' 'NR == 1 { print "wireguard", $2, $3; next } { print "peer", $1, $4 }'
  done
  printf '@rules\\n'
  wg_rules
  for table in $( { printf '%s\\n' $1; wg_rules | sed -n 's/^[0-9]*: .* iif ${WIREGUARD_INTERFACE_PREFIX}[^ ]* .*lookup \\([0-9]*\\)$/\\1/p'; } | sort -un); do
    printf '@table %s\\n' "$table"
    wg_routes "$table"
  done
}

# Creates link $1: the kernel module when it loads, else wireguard-go.
# NOTE: the kernel branch and the "wireguard" kind that wg_read looks for in
# \`ip -d link\` were not run here, because the test machine has no module.
wg_create() {
  local output
  if ip link add dev "$1" type wireguard 2>/dev/null; then
    printf 'created %s kernel\\n' "$1"
  else
    command -v wireguard-go >/dev/null 2>&1 || wg_fail "cannot create $1: the kernel has no WireGuard module and wireguard-go is not installed"
    # setsid takes the daemon out of this script's session, so the end of an
    # SSH session does not end it. The daemon keeps the stdout and stderr it
    # was started with (wireguard-go logs errors there unless LOG_LEVEL=silent),
    # so they go to a file: a pipe to this script would stay open and an SSH
    # session would never end. WG_PROCESS_FOREGROUND must be unset:
    # wireguard-go marks its daemon child by appending =1, and an inherited
    # value listed first hides that, so each child forks again.
    wg_log=$(mktemp)
    if ! env -u LOG_LEVEL -u WG_PROCESS_FOREGROUND setsid wireguard-go "$1" </dev/null >"$wg_log" 2>&1; then
      output=$(grep -v '[│┌└]' "$wg_log" || true)
      rm -f "$wg_log"
      wg_fail "wireguard-go $1 failed: $output"
    fi
    rm -f "$wg_log"
    ip link show dev "$1" >/dev/null 2>&1 || wg_fail "wireguard-go $1 returned without creating the link"
    printf 'created %s wireguard-go\\n' "$1"
  fi
  wg_act "create interface $1"
}

# $1 interface names, $2 "interface:table" pairs and $3 tables of the model.
# Removes rules and routes of vwg pairs the model lacks, then vwg links it lacks.
# NOTE: a table is found through its "iif vwg…" rule only. Routes left in a
# table whose rules were deleted by hand stay until a tunnel reuses the table.
wg_remove_stale() {
  local names=" $1 " pairs=" $2 " tables=" $3 " pair name table pattern line link
  for pair in $(wg_rules | sed -n 's/^[0-9]*: .* iif \\(${WIREGUARD_INTERFACE_PREFIX}[^ ]*\\) .*lookup \\([0-9]*\\)$/\\1:\\2/p' | sort -u); do
    case "$pairs" in *" $pair "*) continue ;; esac
    name=\${pair%%:*}
    table=\${pair##*:}
    # A table that another tunnel now uses keeps its rules and routes.
    case "$tables" in *" $table "*) pattern=" iif $name lookup $table\\$" ;; *) pattern=" lookup $table\\$" ;; esac
    while IFS= read -r line; do
      if [ -z "$line" ]; then continue; fi
      wg_rule_edit del "$line"
      wg_act "remove rule $line"
    done < <(wg_rules | grep -e "$pattern" || true)
    case "$tables" in *" $table "*) continue ;; esac
    line=$(wg_routes "$table")
    if [ -n "$line" ]; then
      ip -4 route flush table "$table"
      wg_act "remove routes of table $table"
    fi
  done
  for link in $(wg_links); do
    case "$names" in *" $link "*) continue ;; esac
    ip link del dev "$link"
    wg_act "remove interface $link"
    wg_wait_socket_gone "$link"
  done
}

# Prints the configuration for wg syncconf, private key included, to a pipe.
wg_config() {
  local key_file=$1 port=$2 peer
  shift 2
  printf '[Interface]\\nPrivateKey = %s\\nListenPort = %s\\n' "$(<"$key_file")" "$port"
  for peer in "$@"; do
    printf '\\n[Peer]\\nPublicKey = %s\\nAllowedIPs = %s\\n' "\${peer%% *}" "\${peer#* }"
  done
}

# Brings one tunnel in line. Arguments: interface, listen port, table, rule
# priority, network, address/24, public key, key file, VM address, bridge,
# then one "public-key address/32" per peer.
wg_ensure_tunnel() {
  local name=$1 port=$2 table=$3 priority=$4 network=$5 address=$6 public_key=$7 key_file=$8 vm=$9 bridge=\${10}
  shift 10
  local peers=("$@") derived have want line current

  [ -f "$key_file" ] || wg_fail "the private key file $key_file of $name is missing: write the tunnel's key again"
  derived=$(wg pubkey < "$key_file" 2>/dev/null) || wg_fail "the private key file $key_file of $name does not hold a valid WireGuard key"
  [ "$derived" = "$public_key" ] || wg_fail "the private key file $key_file of $name belongs to public key $derived, but the tunnel's public key is $public_key: write the tunnel's key again"
  ip link show dev "$bridge" >/dev/null 2>&1 || wg_fail "bridge $bridge of $name is missing"

  if ! ip link show dev "$name" >/dev/null 2>&1; then wg_create "$name"; fi
  if ! ip -o link show dev "$name" | grep -q '[<,]UP[,>]'; then
    # Without an IPv6 link-local address the link adds no fe80::/64 route to the main table.
    ip link set dev "$name" addrgenmode none
    ip link set dev "$name" up
    wg_act "set interface $name up"
  fi

  current=$(wg_addresses "$name")
  if [ "$current" != "$address noprefixroute" ]; then
    while IFS= read -r line; do
      if [ -n "$line" ]; then ip addr del "\${line%% *}" dev "$name"; fi
    done <<<"$current"
    ip addr add "$address" dev "$name" noprefixroute
    wg_act "set address $address of $name"
  fi

  have=$(wg show "$name" dump | awk -F '\\t' 'NR == 1 { print "interface", $2, $3; next } { print "peer", $1, $4 }' | sort)
  want=$( { printf 'interface %s %s\\n' "$public_key" "$port"; for line in "\${peers[@]}"; do printf 'peer %s\\n' "$line"; done; } | sort)
  if [ "$have" != "$want" ]; then
    wg syncconf "$name" <(wg_config "$key_file" "$port" "\${peers[@]}")
    wg_act "set key, listen port $port and \${#peers[@]} peers of $name"
  fi

  want=$(printf '%s\\n' 'unreachable default' "$network dev $name scope link" "$vm dev $bridge scope link" | sort)
  current=$(wg_routes "$table")
  if [ "$current" != "$want" ]; then
    if [ -n "$current" ]; then ip -4 route flush table "$table"; fi
    ip -4 route add unreachable default table "$table"
    ip -4 route add "$network" dev "$name" table "$table"
    ip -4 route add "$vm/32" dev "$bridge" table "$table"
    wg_act "set routes of table $table"
  fi

  want=$(printf '%s\\n' "$priority: from all iif $name lookup $table" "$priority: from all to $network lookup $table" | sort)
  have=$(wg_rules | grep -e " lookup $table\\$" | sort || true)
  while IFS= read -r line; do
    if [ -n "$line" ] && ! grep -qxF -e "$line" <<<"$want"; then
      wg_rule_edit del "$line"
      wg_act "remove rule $line"
    fi
  done <<<"$have"
  while IFS= read -r line; do
    if ! grep -qxF -e "$line" <<<"$have"; then
      wg_rule_edit add "$line"
      wg_act "add rule $line"
    fi
  done <<<"$want"
}
`;
