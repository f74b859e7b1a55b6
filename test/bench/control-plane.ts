// Benchmark: the control plane's own time for `vome server create` (the
// command returns once libvirt has started the VM; the guest's boot is not
// included), with its SSH round trips, and `vome --help` start-up beside a
// bare `node -e ""`. Needs root, the test host and the appliance image, like
// the end-to-end tests. Prints a table; measures, asserts nothing.
import { execa } from 'execa';
import { appliancePath, e2eAvailable, setUpVome } from '../support/e2e-fixture.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function timeCommand(command: string, args: string[], runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const started = performance.now();
    await execa(command, args, { stdout: 'ignore', stderr: 'ignore' });
    times.push(performance.now() - started);
  }
  return times;
}

const host = await e2eAvailable();
if (!host) {
  process.exit(1);
}
const setup = await setUpVome(host, 'bench-host', { start: '10.232.0.70', end: '10.232.0.89' });

interface CreateResult {
  roundTrips: number;
}

const createTimes: number[] = [];
const roundTrips: number[] = [];
try {
  for (let run = 0; run < RUNS; run += 1) {
    const name = `bench-${run}`;
    const started = performance.now();
    const result = await setup.cli.json<CreateResult>(['server', 'create', name, '--account', setup.account, '--host', setup.hostName, '--image', setup.image, '--memory', '512', '--disk', '1', '--vcpus', '1']);
    createTimes.push(performance.now() - started);
    roundTrips.push(result.roundTrips);
    await setup.cli.json(['server', 'destroy', name, '--yes']);
  }

  const bin = new URL('../../packages/cli/bin/run.js', import.meta.url).pathname;
  const help = await timeCommand('node', [bin, '--help'], 10);
  const bare = await timeCommand('node', ['-e', ''], 10);

  const format = (ms: number) => `${ms.toFixed(0)} ms`;
  process.stdout.write(
    [
      `vome control-plane benchmark (${new Date().toISOString()}, image ${appliancePath()})`,
      `server create, ${RUNS} runs: median ${format(median(createTimes))} (min ${format(Math.min(...createTimes))}, max ${format(Math.max(...createTimes))}), SSH round trips per create: ${[...new Set(roundTrips)].join(', ')}`,
      `  includes: CLI start-up, embedded PostgreSQL connection, SSH connect, image check, overlay, DHCP reservation, virsh define and start; excludes the guest's boot`,
      `vome --help, 10 runs: median ${format(median(help))}`,
      `node -e "", 10 runs: median ${format(median(bare))}`,
      '',
    ].join('\n'),
  );
} finally {
  await setup.cli.dispose();
}
