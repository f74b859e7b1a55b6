import { VomeError, type VomeErrorOptions } from '../errors/index.js';
import { type CommandRunner, parseKeyValueLines, shellQuote as q } from '../runner/command-runner.js';
import { HOST_MAP_HEADER, type HostMapEntry, renderNginxSite } from './nginx-config.js';
import type { NetworkModel, PlanChange } from './network-model.js';

/** How long a reload may take before vome reports that nginx kept its old configuration. */
const RELOAD_WAIT_SECONDS = 30;

/** Heredoc delimiter of the site file. A rendered file never contains this line. */
const SITE_DELIMITER = 'VOME_NGINX_SITE';

/**
 * nginx did not take a new site file: `nginx -t` failed, or the running
 * nginx did not finish its reload. The message carries nginx's own lines.
 */
export class NginxConfigError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('nginx_config_rejected', message, options);
  }
}

/** Outcome of applyNginx. */
export interface NginxApplyResult {
  /** The site file on the host was rewritten. */
  changed: boolean;
  /** A running nginx loaded the new file. False when nothing changed or nginx is not running. */
  reloaded: boolean;
}

/**
 * Reads vome's site file from the host in one round trip.
 *
 * @returns the file's exact content, or null when there is no file.
 */
export async function readNginx(runner: CommandRunner, model: NetworkModel): Promise<string | null> {
  const result = await runner.run(
    `site=${q(model.host.nginxSitePath)}
if [ -f "$site" ]; then echo present; cat "$site"; else echo absent; fi`,
    { label: 'read-nginx-site', timeoutMs: 30_000 },
  );
  const newline = result.stdout.indexOf('\n');
  if (result.stdout.slice(0, newline) === 'absent') {
    return null;
  }
  return result.stdout.slice(newline + 1);
}

/**
 * Lists how the host's site file differs from the rendered one. Each map
 * entry that exists on one side only is one item, so a changed address is a
 * remove and an add. Any difference outside the map entries is one more item.
 *
 * @example
 * diffNginx(desired, actual)
 * // [{ part: 'nginx', action: 'add', item: 'a.ha.example.test → 10.232.0.12:8123' }]
 */
export function diffNginx(desired: string, actual: string | null): PlanChange[] {
  const desiredSite = splitSite(desired);
  const actualSite = splitSite(actual ?? '');
  const changes: PlanChange[] = [];

  const actualItems = new Set(actualSite.entries.map(entryItem));
  const desiredItems = new Set(desiredSite.entries.map(entryItem));
  for (const item of desiredItems) {
    if (!actualItems.has(item)) {
      changes.push({ part: 'nginx', action: 'add', item });
    }
  }
  for (const item of actualItems) {
    if (!desiredItems.has(item)) {
      changes.push({ part: 'nginx', action: 'remove', item });
    }
  }

  if (actual === null) {
    changes.push({ part: 'nginx', action: 'add', item: 'settings outside the server map (the site file is missing)' });
  } else if (desiredSite.rest.join('\n') !== actualSite.rest.join('\n')) {
    changes.push({ part: 'nginx', action: 'add', item: `settings outside the server map, first difference: ${firstDifference(desiredSite.rest, actualSite.rest)}` });
  }
  return changes;
}

/**
 * Renders the site file and puts it in place in one round trip. An
 * unchanged file is left alone and nginx is not reloaded. Otherwise the new
 * file replaces the old one atomically (mode 0644) and `nginx -t` checks the
 * whole configuration. When the check passes, a running nginx (judged from
 * the `pid` file named in the main configuration, or nginx's built-in path)
 * reloads, and the script waits until new workers run and no old worker
 * accepts connections. A stopped nginx is left stopped, because the host
 * bootstrap starts it.
 *
 * @throws NginxConfigError with nginx's message when `nginx -t` fails. The
 * old file is then put back (or the new one removed when there was none),
 * and the running nginx keeps its configuration.
 * @throws NginxConfigError when, 30 s after the reload signal, nginx has no
 * new workers or an old worker still accepts connections. The new file stays.
 * @throws InvalidInputError when the model cannot be rendered.
 */
export async function applyNginx(runner: CommandRunner, model: NetworkModel): Promise<NginxApplyResult> {
  const site = renderNginxSite(model);
  const result = await runner.run(applyScript(model, site), { label: 'apply-nginx-site', timeoutMs: 120_000 + RELOAD_WAIT_SECONDS * 1000 });
  const outcome = parseKeyValueLines(result.stdout);
  const { host } = model;

  if (outcome.result === 'rejected') {
    const message = nginxMessage(result.stderr);
    throw new NginxConfigError(
      `nginx rejected the new site file on host "${runner.hostName}": ${message}. The previous file was put back and the running nginx keeps its configuration`,
      {
        hints: [`fix what nginx reports (for example the certificate at ${host.tlsCertificatePath} and the key at ${host.tlsKeyPath}), then apply again`],
        fields: { host: runner.hostName, command: `nginx -t -c ${host.nginxMainConfigPath}`, stderr: result.stderr },
      },
    );
  }
  if (outcome.result === 'reload-failed') {
    throw new NginxConfigError(
      `nginx on host "${runner.hostName}" did not finish reloading within ${RELOAD_WAIT_SECONDS} s (no new workers, or old workers still accepting connections), so it may still run its previous configuration; the new site file is in place`,
      {
        hints: ["read nginx's error log on the host for the reason, fix it, then apply again"],
        fields: { host: runner.hostName, command: `nginx -c ${host.nginxMainConfigPath} -s reload`, stderr: result.stderr },
      },
    );
  }
  return { changed: outcome.changed === '1', reloaded: outcome.reloaded === '1' };
}

function applyScript(model: NetworkModel, site: string): string {
  const { host } = model;
  // The flock serialises two applies on one host. The old file is kept as a
  // hard link, so putting it back is one rename. The temporary names start
  // with a dot and do not end in .conf, so an `include …/*.conf` skips them.
  // NOTE: the script finds only an absolute `pid` path in the main file.
  // A relative path, or one set in an included file, falls back to the built-in path.
  return `site=${q(host.nginxSitePath)}
main=${q(host.nginxMainConfigPath)}
dir=$(dirname "$site")
base=$(basename "$site")
new="$dir/.$base.vome-new"
old="$dir/.$base.vome-old"
mkdir -p -m 0755 "$dir"
exec 9>"$dir/.$base.vome-lock"
flock -w 60 9

cat > "$new" <<'${SITE_DELIMITER}'
${site}${SITE_DELIMITER}
if [ -f "$site" ] && cmp -s "$new" "$site"; then
  rm -f "$new"
  echo changed=0
  echo reloaded=0
  exit 0
fi
chmod 0644 "$new"

rm -f "$old"
had_old=0
if [ -f "$site" ]; then ln -f "$site" "$old"; had_old=1; fi
mv -f "$new" "$site"
if ! check=$(nginx -t -c "$main" 2>&1); then
  if [ "$had_old" = 1 ]; then mv -f "$old" "$site"; else rm -f "$site"; fi
  printf '%s\\n' "$check" >&2
  echo result=rejected
  exit 0
fi
rm -f "$old"
echo changed=1

pid_file=$(sed -n 's/^[[:space:]]*pid[[:space:]]\\{1,\\}\\([^;[:space:]]\\{1,\\}\\)[[:space:]]*;.*/\\1/p' "$main" | tail -n 1)
if [ -z "$pid_file" ]; then pid_file=$(nginx -V 2>&1 | sed -n 's/.*--pid-path=\\([^ ]*\\).*/\\1/p'); fi
master=$(cat "$pid_file" 2>/dev/null || true)
if [ -z "$master" ] || ! kill -0 "$master" 2>/dev/null; then
  echo reloaded=0
  exit 0
fi

# A reload is done when the master has started new workers and every old
# worker is gone or shutting down. An old worker sets that title just before
# it closes its listening sockets, so from then on only new workers accept.
# A master that cannot load the configuration logs why and keeps its workers.
children() { grep -ls "^PPid:[[:space:]]*$master\\$" /proc/[0-9]*/status | sed 's#^/proc/\\([0-9]*\\)/status$#\\1#' | sort || true; }
serving_old_workers() {
  for pid in $before; do
    title=$(tr '\\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" || true)
    case "$title" in
      *"shutting down"*) ;;
      *"worker process"*) echo "$pid" ;;
    esac
  done
}
before=$(children)
nginx -c "$main" -s reload
for attempt in $(seq 1 ${RELOAD_WAIT_SECONDS * 10}); do
  started=$(comm -13 <(printf '%s\\n' "$before") <(children))
  if [ -n "$started" ] && [ -z "$(serving_old_workers)" ]; then
    echo reloaded=1
    exit 0
  fi
  sleep 0.1
done
echo result=reload-failed`;
}

/** Splits a site file into its map entries and the remaining lines. A file without vome's map has no entries. */
function splitSite(text: string): { entries: HostMapEntry[]; rest: string[] } {
  const entries: HostMapEntry[] = [];
  const rest: string[] = [];
  let inMap = false;

  for (const line of text.split('\n')) {
    if (!inMap) {
      inMap = line.trim() === HOST_MAP_HEADER;
      rest.push(line);
      continue;
    }
    if (line.trim() === '}') {
      inMap = false;
      rest.push(line);
      continue;
    }
    const match = /^\s*(\S+)\s+(\S+);\s*$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined && match[1] !== 'default') {
      entries.push({ name: match[1], upstream: match[2] });
    } else {
      rest.push(line);
    }
  }
  return { entries, rest };
}

function entryItem(entry: HostMapEntry): string {
  return `${entry.name} → ${entry.upstream}`;
}

function firstDifference(desiredLines: readonly string[], actualLines: readonly string[]): string {
  for (let index = 0; index < Math.max(desiredLines.length, actualLines.length); index += 1) {
    const desiredLine = desiredLines[index]?.trim() ?? '';
    const actualLine = actualLines[index]?.trim() ?? '';
    if (desiredLine !== actualLine) {
      return desiredLine === '' ? `host line "${actualLine}" is not rendered` : `"${desiredLine}"`;
    }
  }
  return '(none)';
}

/**
 * nginx's error lines from `nginx -t` output, without its closing "test
 * failed" line. Once nginx has an error log, it prefixes lines with a time
 * and process id, so they are rewritten to its plain "nginx: [level] …" form.
 */
function nginxMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim().replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: /, 'nginx: [$1] '))
    .filter((line) => line.length > 0);
  const errors = lines.filter((line) => /\[(emerg|alert|crit|error)\]/.test(line));
  return (errors.length > 0 ? errors : lines).join('; ') || '(no output)';
}
