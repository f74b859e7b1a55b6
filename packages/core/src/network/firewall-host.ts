import { HostCommandError, VomeError, type VomeErrorOptions } from '../errors/index.js';
import { type CommandRunner, parseKeyValueLines, shellQuote as q } from '../runner/command-runner.js';
import {
  FIREWALL_CHAINS,
  FIREWALL_JUMPS,
  type FirewallFamily,
  type FirewallJump,
  type FirewallRuleset,
  formatVomeChains,
  parseSavedRules,
  renderFirewall,
} from './firewall-rules.js';
import type { NetworkHost, NetworkModel, PlanChange } from './network-model.js';

export { renderFirewall } from './firewall-rules.js';

/** Exit code of a host script whose restore input iptables, ip6tables or ebtables rejected. */
const REJECTED_EXIT_CODE = 3;

/** Separates the families in readFirewall's output. No save tool prints it. */
const FAMILY_MARKER = 'vome-firewall-family=';

const APPLY_TIMEOUT_MS = 120_000;

/**
 * iptables-restore, ip6tables-restore or ebtables-restore rejected vome's
 * rules. Each family is loaded in one transaction, in the order bridge,
 * IPv4, IPv6. The IPv4 and IPv6 inputs are parsed with `--test` before
 * any family is loaded. ebtables-restore has no `--test`, but it commits
 * its whole input or nothing, and it goes first. So on a rejection the
 * host keeps the rules it had. The exception is an error that only the
 * kernel finds at commit time in IPv4 or IPv6, after an earlier family
 * was loaded: the message then names the families that were loaded.
 */
export class FirewallRejectedError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('firewall_rejected', message, options);
  }
}

/** Position of a jump to one of vome's chains within its built-in chain. */
export interface JumpPlacement extends FirewallJump {
  /** Rule numbers (from 1) of `-A <builtin> -j <target>` in the built-in chain. [1] is the expected value. */
  positions: number[];
}

/** vome's chains as a host has them, with the positions of the jumps to them. */
export interface HostFirewall extends FirewallRuleset {
  jumps: JumpPlacement[];
}

/**
 * Reads vome's chains and the jumps to them from the host in one round
 * trip. The texts have the form renderFirewall returns, and are "" when
 * the host has none of vome's chains.
 */
export async function readFirewall(runner: CommandRunner, _model: NetworkModel): Promise<HostFirewall> {
  const script = [`echo ${FAMILY_MARKER}ipv4`, 'iptables-save', `echo ${FAMILY_MARKER}ipv6`, 'ip6tables-save', `echo ${FAMILY_MARKER}bridge`, 'ebtables-save'];
  const result = await runner.run(script.join('\n'), { label: 'read-firewall', timeoutMs: 60_000 });
  const [, v4Save = '', v6Save = '', bridgeSave = ''] = result.stdout.split(new RegExp(`^${FAMILY_MARKER}(?:ipv4|ipv6|bridge)\\n`, 'm'));
  const saved = { ipv4: parseSavedRules(v4Save), ipv6: parseSavedRules(v6Save), bridge: parseSavedRules(bridgeSave) };

  const jumps = FIREWALL_JUMPS.map((jump) => {
    const rules = saved[jump.family].get(jump.table)?.rules.get(jump.builtin) ?? [];
    const positions = rules.flatMap((rule, index) => (rule === jumpRule(jump) ? [index + 1] : []));
    return { ...jump, positions };
  });
  return {
    v4: formatVomeChains('ipv4', saved.ipv4),
    v6: formatVomeChains('ipv6', saved.ipv6),
    bridge: formatVomeChains('bridge', saved.bridge),
    jumps,
  };
}

/**
 * Lists how the host's firewall differs from the rendered one: one item per
 * chain, policy, rule or jump to add or remove, written as the iptables or
 * ebtables arguments with the family (ipv4, ipv6 or bridge) in front. A
 * rule that moved within its chain is a remove and an add, and so is a
 * changed chain policy. A jump that is not its built-in chain's first rule
 * is a remove of that jump and an add of one at rule 1.
 *
 * @example
 * diffFirewall(renderFirewall(model), await readFirewall(runner, model))
 * // [{ part: 'firewall', action: 'add', item: 'ipv4 -A VOME-SPOOF -s 10.232.0.12/32 -m physdev …' },
 * //  { part: 'firewall', action: 'add', item: 'ipv4 -I FORWARD 1 -j VOME-FORWARD' }]
 */
export function diffFirewall(desired: FirewallRuleset, actual: HostFirewall): PlanChange[] {
  const changes: PlanChange[] = [];
  const parsed = {
    ipv4: { desired: parseSavedRules(desired.v4), actual: parseSavedRules(actual.v4) },
    ipv6: { desired: parseSavedRules(desired.v6), actual: parseSavedRules(actual.v6) },
    bridge: { desired: parseSavedRules(desired.bridge), actual: parseSavedRules(actual.bridge) },
  };

  for (const chain of FIREWALL_CHAINS) {
    const desiredTable = parsed[chain.family].desired.get(chain.table);
    const actualTable = parsed[chain.family].actual.get(chain.table);
    const prefix = `${chain.family} ${chain.table === 'filter' ? '' : `-t ${chain.table} `}`;
    const isDesired = desiredTable?.chains.includes(chain.name) ?? false;
    const isActual = actualTable?.chains.includes(chain.name) ?? false;

    if (isDesired && !isActual) {
      changes.push({ part: 'firewall', action: 'add', item: `${prefix}-N ${chain.name}` });
    }
    if (isActual && !isDesired) {
      changes.push({ part: 'firewall', action: 'remove', item: `${prefix}-X ${chain.name}` });
    }
    const desiredPolicy = desiredTable?.policies.get(chain.name);
    const actualPolicy = actualTable?.policies.get(chain.name);
    if (isDesired && isActual && desiredPolicy !== actualPolicy) {
      changes.push({ part: 'firewall', action: 'remove', item: `${prefix}-P ${chain.name} ${actualPolicy}` });
      changes.push({ part: 'firewall', action: 'add', item: `${prefix}-P ${chain.name} ${desiredPolicy}` });
    }
    const lines = diffLines(desiredTable?.rules.get(chain.name) ?? [], actualTable?.rules.get(chain.name) ?? []);
    changes.push(...lines.map((line) => ({ part: 'firewall' as const, action: line.action, item: `${prefix}${line.line}` })));
  }

  for (const jump of actual.jumps) {
    const prefix = `${jump.family} ${jump.table === 'filter' ? '' : `-t ${jump.table} `}`;
    for (const position of jump.positions.filter((candidate) => candidate !== 1)) {
      changes.push({ part: 'firewall', action: 'remove', item: `${prefix}${jumpRule(jump)} (rule ${position})` });
    }
    if (!jump.positions.includes(1)) {
      changes.push({ part: 'firewall', action: 'add', item: `${prefix}-I ${jump.builtin} 1 -j ${jump.target}` });
    }
  }
  return changes;
}

/**
 * Brings the host's firewall in line with the model in one round trip. See
 * applyFirewallRuleset for what changes on the host.
 *
 * @throws InvalidInputError when the model cannot be rendered.
 * @throws FirewallRejectedError when iptables rejects a rule. No rule changed.
 */
export async function applyFirewall(runner: CommandRunner, model: NetworkModel): Promise<{ changed: boolean }> {
  return applyFirewallRuleset(runner, model.host, renderFirewall(model));
}

/**
 * Loads a rendered ruleset in one round trip. When vome's chains already
 * hold exactly these rules and policies and each jump to them is its
 * built-in chain's only such jump and first rule, no rule changes.
 * Otherwise each family that differs is loaded with one
 * `iptables-restore`, `ip6tables-restore` or `ebtables-restore` call with
 * `--noflush`, which flushes only vome's chains, fills them and moves the
 * jumps to rule 1 in one transaction. Other tools' chains, rules and
 * policies are never touched. See FirewallRejectedError for the order of
 * the loads and what a rejection leaves.
 *
 * The ruleset is then saved to `<networkDir>/firewall.v4`, `firewall.v6`
 * and `firewall.bridge` (0600) together with `restore-firewall.sh` (0700),
 * which loads the saved files the same way at boot. These files are
 * rewritten on every call, atomically, whether or not a rule changed.
 *
 * @returns changed: whether any rule, policy or jump changed.
 * @throws FirewallRejectedError naming the rejected line. No rule changed,
 *   unless the kernel rejected a family after another was loaded (see the class).
 */
export async function applyFirewallRuleset(runner: CommandRunner, host: NetworkHost, ruleset: FirewallRuleset): Promise<{ changed: boolean }> {
  const result = await runner.run(applyScript(host, ruleset), { label: 'apply-firewall', timeoutMs: APPLY_TIMEOUT_MS, check: false });
  const outcome = parseKeyValueLines(result.stdout);

  if (result.exitCode === REJECTED_EXIT_CODE && outcome.rejected_tool !== undefined) {
    const tool = outcome.rejected_tool;
    const line = outcome.rejected_line ?? '';
    const rule = outcome.rejected_rule ?? '';
    const where = line === '' ? 'its input' : `line ${line} of its input, "${rule}"`;
    const hostState = loadedFamiliesMessage(outcome);
    throw new FirewallRejectedError(`${tool} on host "${runner.hostName}" rejected ${where}: ${restoreMessage(result.stderr)}. ${hostState}`, {
      hints: ['fix the rule named above (iptables shows a missing extension as "Couldn\'t load match", ebtables as "Unknown argument"), then apply again'],
      fields: { host: runner.hostName, command: `${tool} --noflush`, rule, line, stderr: result.stderr },
    });
  }
  if (result.exitCode !== 0) {
    throw new HostCommandError(runner.hostName, 'apply-firewall', result.exitCode, result.stderr);
  }
  return { changed: outcome.changed === '1' };
}

/**
 * Returns the text of `<networkDir>/restore-firewall.sh`: it loads the
 * saved firewall.v4, firewall.v6 and firewall.bridge into vome's chains
 * and puts the jumps first, exactly as applyFirewall does, and changes
 * nothing when the rules are already in place. Run it at boot or after
 * the host's rules were flushed. It prints `changed=0` or `changed=1`.
 */
export function firewallRestoreScript(host: NetworkHost): string {
  return `#!/bin/bash
# Written by vome, and overwritten on every firewall apply.
set -euo pipefail
export LC_ALL=C
umask 077
dir=${q(host.networkDir)}
exec 9>"$dir/.firewall.lock"
flock -w 60 9
work=$(mktemp -d "$dir/.firewall-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT
${LOADER_FUNCTIONS}
vome_firewall_load "$dir/firewall.v4" "$dir/firewall.v6" "$dir/firewall.bridge" "$work"
`;
}

function applyScript(host: NetworkHost, ruleset: FirewallRuleset): string {
  // The saved files are written after the load, so a killed script leaves
  // them stale at worst, and the next apply rewrites them.
  return `dir=${q(host.networkDir)}
mkdir -p "$dir"
exec 9>"$dir/.firewall.lock"
flock -w 60 9
work=$(mktemp -d "$dir/.firewall-apply.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat > "$work/firewall.v4" <<'VOME_FIREWALL_V4'
${ruleset.v4}VOME_FIREWALL_V4
cat > "$work/firewall.v6" <<'VOME_FIREWALL_V6'
${ruleset.v6}VOME_FIREWALL_V6
cat > "$work/firewall.bridge" <<'VOME_FIREWALL_BRIDGE'
${ruleset.bridge}VOME_FIREWALL_BRIDGE
cat > "$work/restore-firewall.sh" <<'VOME_FIREWALL_RESTORE'
${firewallRestoreScript(host)}VOME_FIREWALL_RESTORE

${LOADER_FUNCTIONS}
vome_firewall_load "$work/firewall.v4" "$work/firewall.v6" "$work/firewall.bridge" "$work"

chmod 0600 "$work/firewall.v4" "$work/firewall.v6" "$work/firewall.bridge"
chmod 0700 "$work/restore-firewall.sh"
for name in firewall.v4 firewall.v6 firewall.bridge restore-firewall.sh; do
  mv -f "$work/$name" "$dir/$name"
done`;
}

/** Returns the rule line of a jump as `iptables-save` and `ebtables-save` print it. */
function jumpRule(jump: FirewallJump): string {
  return `-A ${jump.builtin} -j ${jump.target}`;
}

/** Returns one family's jumps as `table:BUILTIN:TARGET` words for the loader. */
function jumpWords(family: FirewallFamily): string {
  return FIREWALL_JUMPS.filter((jump) => jump.family === family)
    .map((jump) => `${jump.table}:${jump.builtin}:${jump.target}`)
    .join(' ');
}

// The awk program compares the host's rules (first file, `iptables-save`
// or `ebtables-save` output) with the ruleset (second file). It prints
// "same" when every chain the ruleset declares exists with its policy and
// exactly its rules and every jump is the only one in its built-in chain
// and its first rule. Otherwise it writes restore input to `out` and prints
// "changed". The input declares vome's chains (which flushes them under
// --noflush and, in ebtables, sets their policy), deletes every existing
// jump and inserts one at rule 1, and appends the rules: one transaction
// per family. ebtables-restore 1.8.9 accepts the COMMIT line that ends
// each table. It uses POSIX awk only (checked with mawk 1.3.4) and
// contains no single quote, because the shell passes it in single quotes.
const PLAN_AWK = `
BEGIN {
  jump_count = split(jumps, words, " ")
  for (j = 1; j <= jump_count; j++) {
    split(words[j], part, ":")
    jump_table[j] = part[1]; jump_chain[j] = part[2]; jump_target[j] = part[3]
    found_jumps[j] = 0; jump_first[j] = 0
  }
}
FILENAME == ARGV[1] && /^\\*/ { table = substr($0, 2); next }
FILENAME == ARGV[1] && /^:/ { exists[table, substr($1, 2)] = 1; host_policy[table, substr($1, 2)] = $2; next }
FILENAME == ARGV[1] && /^-A / {
  chain = $2
  host_count[table, chain]++
  host_rule[table, chain, host_count[table, chain]] = $0
  for (j = 1; j <= jump_count; j++) {
    if (jump_table[j] == table && jump_chain[j] == chain && $0 == "-A " chain " -j " jump_target[j]) {
      found_jumps[j]++
      if (host_count[table, chain] == 1) jump_first[j] = 1
    }
  }
  next
}
FILENAME == ARGV[2] && /^\\*/ { table = substr($0, 2); table_count++; tables[table_count] = table; next }
FILENAME == ARGV[2] && /^:/ {
  declared_count[table]++
  declared[table, declared_count[table]] = $0
  declared_chain[table, declared_count[table]] = substr($1, 2)
  declared_policy[table, declared_count[table]] = $2
  next
}
FILENAME == ARGV[2] && /^-A / {
  chain = $2
  rule_count[table]++
  rules[table, rule_count[table]] = $0
  desired_count[table, chain]++
  if (host_rule[table, chain, desired_count[table, chain]] != $0) changed = 1
  next
}
END {
  for (t = 1; t <= table_count; t++) {
    table = tables[t]
    for (d = 1; d <= declared_count[table]; d++) {
      chain = declared_chain[table, d]
      if (!exists[table, chain] || host_count[table, chain] != desired_count[table, chain]) changed = 1
      if (host_policy[table, chain] != declared_policy[table, d]) changed = 1
    }
  }
  for (j = 1; j <= jump_count; j++) if (found_jumps[j] != 1 || !jump_first[j]) changed = 1
  if (!changed) { print "same"; exit }
  for (t = 1; t <= table_count; t++) {
    table = tables[t]
    print "*" table > out
    for (d = 1; d <= declared_count[table]; d++) print declared[table, d] > out
    for (j = 1; j <= jump_count; j++) {
      if (jump_table[j] != table) continue
      for (k = 1; k <= found_jumps[j]; k++) print "-D " jump_chain[j] " -j " jump_target[j] > out
      print "-I " jump_chain[j] " 1 -j " jump_target[j] > out
    }
    for (r = 1; r <= rule_count[table]; r++) print rules[table, r] > out
    print "COMMIT" > out
  }
  print "changed"
}`;

// Shell functions shared by the apply script and restore-firewall.sh, so
// that both load rules the same way. vome_firewall_load prints changed=0|1
// and loaded_<family>=1 for each family it loaded. It exits with
// ${REJECTED_EXIT_CODE} and rejected_* lines when a restore tool rejects
// its input. ebtables-restore has no --test, so the bridge family is
// loaded first: it commits all or nothing, and a rejection there leaves
// every family as it was.
const LOADER_FUNCTIONS = `# vome_firewall_plan TOOL RULESET INPUT JUMPS: prints "same", or writes restore input to INPUT and prints "changed".
vome_firewall_plan() {
  # Command substitution clears errexit in bash, so a failed save must return by itself.
  "$1-save" > "$3.saved" || return 1
  awk -v jumps="$4" -v out="$3" '${PLAN_AWK}' "$3.saved" "$2"
}

# vome_firewall_restore TOOL INPUT [--test]: loads INPUT, or prints the rejected line and exits with ${REJECTED_EXIT_CODE}.
vome_firewall_restore() {
  local output line rule
  if output=$("$1-restore" --noflush \${3:+"$3"} < "$2" 2>&1); then
    return 0
  fi
  line=$(printf '%s\\n' "$output" | sed -n -e 's/^Error occurred at line: \\([0-9][0-9]*\\)$/\\1/p' -e 's/^.*line \\([0-9][0-9]*\\) failed.*$/\\1/p' | head -n 1)
  rule=""
  if [ -n "$line" ]; then rule=$(sed -n "\${line}p" "$2"); fi
  printf 'rejected_tool=%s\\nrejected_line=%s\\nrejected_rule=%s\\n' "$1-restore" "$line" "$rule"
  printf '%s\\n' "$output" >&2
  exit ${REJECTED_EXIT_CODE}
}

# vome_firewall_load V4_RULESET V6_RULESET BRIDGE_RULESET WORK_DIR: loads the families that differ.
vome_firewall_load() {
  local v4 v6 bridge
  v4=$(vome_firewall_plan iptables "$1" "$4/restore.v4" ${q(jumpWords('ipv4'))})
  v6=$(vome_firewall_plan ip6tables "$2" "$4/restore.v6" ${q(jumpWords('ipv6'))})
  bridge=$(vome_firewall_plan ebtables "$3" "$4/restore.bridge" ${q(jumpWords('bridge'))})
  if [ "$v4" = changed ]; then vome_firewall_restore iptables "$4/restore.v4" --test; fi
  if [ "$v6" = changed ]; then vome_firewall_restore ip6tables "$4/restore.v6" --test; fi
  if [ "$bridge" = changed ]; then vome_firewall_restore ebtables "$4/restore.bridge"; echo loaded_bridge=1; fi
  if [ "$v4" = changed ]; then vome_firewall_restore iptables "$4/restore.v4"; echo loaded_ipv4=1; fi
  if [ "$v6" = changed ]; then vome_firewall_restore ip6tables "$4/restore.v6"; fi
  if [ "$v4" = changed ] || [ "$v6" = changed ] || [ "$bridge" = changed ]; then echo changed=1; else echo changed=0; fi
}`;

/** Returns the sentence on what a rejected apply left loaded, from the loaded_* lines of the script. */
function loadedFamiliesMessage(outcome: Record<string, string>): string {
  const loaded = [outcome.loaded_bridge === '1' ? 'bridge' : '', outcome.loaded_ipv4 === '1' ? 'IPv4' : ''].filter((name) => name !== '');
  if (loaded.length === 0) {
    return 'The host keeps its previous rules';
  }
  return `The ${loaded.join(' and ')} rules were loaded, but the other families keep their previous rules`;
}

/** Returns the restore tool's own error lines, without the usage hint and the line number it adds. */
function restoreMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('Try `') && !line.startsWith('Error occurred at line'));
  return lines.join('; ') || '(no output)';
}

/**
 * Lists the lines to remove from `actual` and to add to it to get `desired`,
 * keeping a longest common subsequence in place. Each line is keyed by its
 * text and occurrence number. In rendered chains every line is unique,
 * which makes the common subsequence a longest increasing subsequence of
 * positions in `desired`: O(n log n) even for thousands of servers.
 */
function diffLines(desired: readonly string[], actual: readonly string[]): { action: 'add' | 'remove'; line: string }[] {
  const desiredIndex = new Map<string, number>();
  occurrenceKeys(desired).forEach((key, index) => desiredIndex.set(key, index));
  const positions = occurrenceKeys(actual).map((key) => desiredIndex.get(key) ?? -1);
  const common = longestIncreasing(positions);

  const commonDesired = new Set<number>();
  const commonActual = new Set<number>();
  for (const actualIndex of common) {
    commonActual.add(actualIndex);
    commonDesired.add(positions[actualIndex] ?? -1);
  }
  return [
    ...actual.flatMap((line, index) => (commonActual.has(index) ? [] : [{ action: 'remove' as const, line }])),
    ...desired.flatMap((line, index) => (commonDesired.has(index) ? [] : [{ action: 'add' as const, line }])),
  ];
}

function occurrenceKeys(lines: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return lines.map((line) => {
    const count = (seen.get(line) ?? 0) + 1;
    seen.set(line, count);
    return `${count}\u0000${line}`;
  });
}

/** Returns the indexes of a longest strictly increasing subsequence of the non-negative values. */
function longestIncreasing(values: readonly number[]): number[] {
  // tails[k] is the index of the smallest value that ends an increasing run of length k + 1.
  const tails: number[] = [];
  const previous = new Array<number>(values.length).fill(-1);

  values.forEach((value, index) => {
    if (value < 0) {
      return;
    }
    let low = 0;
    let high = tails.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((values[tails[middle] ?? 0] ?? 0) < value) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    previous[index] = low > 0 ? (tails[low - 1] ?? -1) : -1;
    tails[low] = index;
  });

  const result: number[] = [];
  for (let index = tails[tails.length - 1] ?? -1; index >= 0; index = previous[index] ?? -1) {
    result.push(index);
  }
  return result.reverse();
}
