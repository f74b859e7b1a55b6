import { execFileSync } from 'node:child_process';

/**
 * Reports whether a test's requirement holds. In CI (CI=true) a missing
 * requirement is an error, because `.ci/run` installs everything; elsewhere
 * the test is skipped and the reason printed.
 */
export function requirement(met: boolean, reason: string): boolean {
  if (met) {
    return true;
  }
  if (process.env.CI === 'true') {
    throw new Error(`requirement missing in CI: ${reason}`);
  }
  process.stderr.write(`SKIPPED: ${reason}\n`);
  return false;
}

/** Reports whether a program is on PATH. */
export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const isRoot = process.getuid?.() === 0;
