import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../src/lib/exit-codes.js';

describe('EXIT', () => {
  it('keeps the documented numbers', () => {
    expect(EXIT).toEqual({ ok: 0, failure: 1, usage: 2, invalidInput: 3, host: 4, busy: 5, checkFailed: 6, config: 7 });
  });
});

describe('exitCodeFor', () => {
  it.each([
    ['invalid_input', 3],
    ['conflict', 3],
    ['address_range_full', 3],
    ['server_not_found', 3],
    ['host_not_found', 3],
    ['account_not_found', 3],
    ['image_not_found', 3],
    ['host_unreachable', 4],
    ['host_auth_rejected', 4],
    ['host_key_mismatch', 4],
    ['host_command_failed', 4],
    ['host_command_timed_out', 4],
    ['host_upload_failed', 4],
    ['host_not_ready', 4],
    ['server_busy', 5],
    ['audit_chain_broken', 6],
    ['invalid_config', 7],
    ['ssh_key_unreadable', 7],
    ['unknown_step', 1],
    ['embedded_postgres_failed', 1],
    ['embedded_postgres_unavailable', 1],
    ['image_download_failed', 3],
    ['insufficient_disk_space', 3],
    ['image_write_failed', 1],
    ['host_probe_failed', 4],
    ['nginx_config_rejected', 3],
    ['peer_not_found', 3],
    ['firewall_rejected', 4],
    ['firewall_rejected_extra', 1],
    ['', 1],
    ['INVALID_INPUT', 1],
    ['invalid_input_extra', 1],
    ['xinvalid_input', 1],
    ['host_unreachable2', 1],
  ])('maps %j to %d', (code, exitCode) => {
    expect(exitCodeFor(code)).toBe(exitCode);
  });
});
