/**
 * Exit codes of every `vome` command. Scripts and cron branch on these; the
 * README lists them.
 */
export const EXIT = {
  ok: 0,
  /** An unexpected failure: a bug, or an error no other code covers. */
  failure: 1,
  /** Wrong flags or arguments (oclif's parse errors use 2 as well). */
  usage: 2,
  /** Input that breaks a rule, a named object that does not exist or already exists, an image URL that fails to download, or a configuration nginx rejects. */
  invalidInput: 3,
  /** A host is unreachable, rejected the key, has another host key, a host command failed, or its iptables rejected the ruleset. */
  host: 4,
  /** Another operation has the server's lock. */
  busy: 5,
  /** A check found a problem: a broken audit chain, or `host check` found something missing. */
  checkFailed: 6,
  /** Settings in the environment are missing or invalid. */
  config: 7,
} as const;

const BY_CODE: Array<[RegExp, number]> = [
  [/^(invalid_input|conflict|address_range_full|image_download_failed|insufficient_disk_space|nginx_config_rejected|.*_not_found)$/, EXIT.invalidInput],
  [/^(host_(unreachable|auth_rejected|key_mismatch|command_failed|command_timed_out|upload_failed|not_ready|probe_failed)|firewall_rejected)$/, EXIT.host],
  [/^server_busy$/, EXIT.busy],
  [/^audit_chain_broken$/, EXIT.checkFailed],
  [/^(invalid_config|ssh_key_unreadable)$/, EXIT.config],
];

/** Maps a core error code to the process exit code. */
export function exitCodeFor(code: string): number {
  return BY_CODE.find(([pattern]) => pattern.test(code))?.[1] ?? EXIT.failure;
}
