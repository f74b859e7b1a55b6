import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import type { Actor } from '../audit/actor.js';
import { withAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { Host, Image } from '../db/schema.js';
import { ConflictError, InvalidInputError, NotFoundError, VomeError } from '../errors/index.js';
import type { HostContext } from '../hosts/hosts.js';
import type { Logger } from '../logging/logger.js';
import { requireDnsLabel } from '../naming/dns-label.js';
import { type CommandRunner, shellQuote } from '../runner/command-runner.js';
import { MAX_IMAGE_BYTES, copyImageFile, decompressXz, formatBytes, inspectImage, isXz, requireRoomForImage, sha256File, writeStreamToFile } from './image-file.js';

export interface AddImageInput {
  name: string;
  /** A local path or an https:// URL. */
  source: string;
  /** Expected SHA-256 of the source as given (before decompression). */
  sha256?: string;
}

/** Maximum number of redirects that a download follows. */
export const MAX_DOWNLOAD_REDIRECTS = 5;

/** A download fails when no byte arrives for this long, in milliseconds. */
export const DOWNLOAD_STALL_TIMEOUT_MS = 60_000;

/**
 * A work folder of addImage (`.incoming-*`) with no change for this long, in
 * milliseconds, belongs to an add that died, and the next add removes it.
 */
export const STALE_WORK_FOLDER_MS = 60 * 60_000;

function nameTaken(name: string): ConflictError {
  return new ConflictError(`image "${name}" already exists`, { hints: ['pick another name; images are never replaced under the same name'] });
}

/** Returns the folder of the control plane's copy of each image. */
export function imageStoreDir(home: string): string {
  return join(home, 'images');
}

function storedImagePath(home: string, image: Pick<Image, 'sha256' | 'format'>): string {
  return join(imageStoreDir(home), `${image.sha256}.${image.format}`);
}

/** Returns the path of an image on a host. */
export function hostImagePath(host: Pick<Host, 'data_dir'>, image: Pick<Image, 'name' | 'sha256' | 'format'>): string {
  return `${host.data_dir}/images/${image.name}-${image.sha256.slice(0, 12)}.${image.format}`;
}

export interface DownloadOptions {
  /** Defaults to DOWNLOAD_STALL_TIMEOUT_MS. */
  stallTimeoutMs?: number;
  /** Defaults to MAX_IMAGE_BYTES. */
  maxBytes?: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Fetches a URL, following at most MAX_DOWNLOAD_REDIRECTS redirects and only to https:// URLs. */
async function fetchOverHttps(url: string, signal: AbortSignal): Promise<Response> {
  let current = url;
  for (let redirects = 0; ; redirects += 1) {
    const response = await fetch(current, { redirect: 'manual', signal });
    if (!REDIRECT_STATUSES.has(response.status)) {
      return response;
    }
    await response.body?.cancel();
    const location = response.headers.get('location');
    if (location === null) {
      throw new VomeError('image_download_failed', `download of ${url} failed: ${current} returned HTTP ${response.status} without a Location header`);
    }
    const next = new URL(location, current);
    if (next.protocol !== 'https:') {
      throw new VomeError('image_download_failed', `download of ${url} failed: it redirects to ${next.href}, which is not an https:// URL`, {
        hints: ['give the final https:// URL of the image'],
      });
    }
    if (redirects === MAX_DOWNLOAD_REDIRECTS) {
      throw new VomeError('image_download_failed', `download of ${url} failed: more than ${MAX_DOWNLOAD_REDIRECTS} redirects`);
    }
    current = next.href;
  }
}

/**
 * Downloads an https:// URL to a new file `target`. Redirects are followed
 * only to https:// URLs. The download fails when no byte arrives for the
 * stall timeout, and when the body exceeds the maximum size or the free
 * space of the target's folder. The partial file is removed on every failure.
 * Certificates are checked against Node's CA store, which NODE_EXTRA_CA_CERTS
 * extends.
 *
 * @throws VomeError `image_download_failed` (or `image_write_failed`, `insufficient_disk_space`).
 */
export async function downloadImage(url: string, target: string, options: DownloadOptions = {}): Promise<void> {
  const stallTimeoutMs = options.stallTimeoutMs ?? DOWNLOAD_STALL_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? MAX_IMAGE_BYTES;
  const tooLarge = (): VomeError =>
    new VomeError('image_download_failed', `download of ${url} failed: the image is larger than the maximum image size of ${formatBytes(maxBytes)}`);

  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const restartStallTimer = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      controller.abort(new VomeError('image_download_failed', `download of ${url} timed out: no data arrived for ${stallTimeoutMs / 1000} s`));
    }, stallTimeoutMs);
  };

  try {
    restartStallTimer();
    const response = await fetchOverHttps(url, controller.signal);
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new VomeError('image_download_failed', `download of ${url} failed with HTTP ${response.status}`);
    }
    const length = response.headers.get('content-length');
    if (length !== null && Number(length) > maxBytes) {
      await response.body.cancel();
      throw tooLarge();
    }
    if (length !== null) {
      await requireRoomForImage(`the download of ${url}`, Number(length), dirname(target));
    }
    await writeStreamToFile(Readable.fromWeb(response.body as ReadableStream), target, { maxBytes, tooLarge, onData: restartStallTimer });
  } catch (error) {
    // writeStreamToFile has removed the partial file already.
    if (controller.signal.aborted) {
      throw controller.signal.reason as VomeError;
    }
    if (error instanceof VomeError) {
      throw error;
    }
    throw new VomeError('image_download_failed', `download of ${url} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/** Returns the latest modification time of a folder and of the entries in it, in ms since the epoch. */
async function latestChangeMs(folder: string): Promise<number> {
  let latest = (await stat(folder)).mtimeMs;
  for (const entry of await readdir(folder)) {
    const info = await stat(join(folder, entry)).catch(() => undefined);
    latest = Math.max(latest, info?.mtimeMs ?? 0);
  }
  return latest;
}

/**
 * Removes work folders of adds that died (killed, or the machine stopped),
 * which can hold a multi-GiB download or decompression. A running add writes
 * to its folder while it downloads, copies or decompresses, and its other
 * steps take minutes (an estimate: hashing 64 GiB at 200 MB/s takes under 6
 * minutes), so a folder unchanged for STALE_WORK_FOLDER_MS is not in use.
 */
async function removeStaleWorkFolders(store: string, logger: Logger): Promise<void> {
  for (const entry of await readdir(store, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith('.incoming-')) {
      continue;
    }
    const folder = join(store, entry.name);
    try {
      const idleMs = Date.now() - (await latestChangeMs(folder));
      if (idleMs > STALE_WORK_FOLDER_MS) {
        await rm(folder, { recursive: true, force: true });
        logger.info({ folder, idleMs }, 'removed the work folder of an image add that did not finish');
      }
    } catch (error) {
      // Another add may have removed the folder first.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw error;
      }
    }
  }
}

/** Fetches or copies the source into `target`, so that no later step reads the operator's path. */
async function fetchSource(source: string, target: string): Promise<void> {
  if (/^https:\/\//i.test(source)) {
    await downloadImage(source, target);
  } else if (/^[a-z]+:\/\//i.test(source)) {
    throw new InvalidInputError(`invalid image source "${source}": give a local path or an https:// URL`);
  } else {
    await copyImageFile(source, target);
  }
}

/**
 * Registers a base image: copies or downloads it into a private work folder
 * under VOME_HOME, checks the SHA-256 when given, decompresses xz, reads its
 * real format, and keeps a read-only copy from which hosts receive it. Every
 * check reads the private copy, never the operator's path again. Nothing is
 * kept when a check fails.
 */
export async function addImage(context: HostContext, actor: Actor, input: AddImageInput): Promise<Image> {
  const name = requireDnsLabel('image name', input.name);
  const expected = input.sha256?.toLowerCase();
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new InvalidInputError(`invalid --sha256 "${input.sha256}": expected 64 hexadecimal characters`);
  }
  const taken = await context.db.selectFrom('images').select('id').where('name', '=', name).executeTakeFirst();
  if (taken) {
    throw nameTaken(name);
  }

  const store = imageStoreDir(context.config.home);
  await mkdir(store, { recursive: true, mode: 0o700 });
  await removeStaleWorkFolders(store, context.logger);
  const work = join(store, `.incoming-${randomUUID()}`);
  await mkdir(work, { mode: 0o700 });
  try {
    const sourcePath = join(work, 'source');
    await fetchSource(input.source, sourcePath);

    if (expected !== undefined) {
      const actual = await sha256File(sourcePath);
      if (actual !== expected) {
        throw new InvalidInputError(`SHA-256 mismatch for ${input.source}: expected ${expected}, got ${actual}`, {
          hints: ['download the image again, and check the checksum against the release page'],
        });
      }
    }

    let imagePath = sourcePath;
    let label = input.source;
    if (await isXz(sourcePath)) {
      imagePath = join(work, 'image');
      await decompressXz(sourcePath, imagePath, input.source);
      await rm(sourcePath);
      label = `${input.source} (decompressed)`;
    }
    const info = await inspectImage(imagePath, label);
    const sha256 = await sha256File(imagePath);
    const size = (await stat(imagePath)).size;
    const finalPath = storedImagePath(context.config.home, { sha256, format: info.format });
    await chmod(imagePath, 0o444);

    return await withAudit(context.db, async (trx) => {
      // A concurrent add can take the name after the check above. The unique
      // index decides, so the file moves into the store only for the winner.
      const image = await trx
        .insertInto('images')
        .values({ name, format: info.format, virtual_size_bytes: info.virtualSizeBytes, file_size_bytes: size, sha256, source: input.source })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!image) {
        throw nameTaken(name);
      }
      await rename(imagePath, finalPath);
      return {
        result: image,
        audit: { actor, action: 'image.add', target: { kind: 'image', id: image.id }, details: { name, format: info.format, sha256, source: input.source } },
      };
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Lists images by name. */
export async function listImages(db: Db): Promise<Image[]> {
  return db.selectFrom('images').selectAll().orderBy('name').execute();
}

/**
 * Finds an image by name.
 *
 * @throws NotFoundError when there is none.
 */
export async function getImage(db: Db, name: string): Promise<Image> {
  const image = await db.selectFrom('images').selectAll().where('name', '=', name).executeTakeFirst();
  if (!image) {
    throw new NotFoundError('image', name, { hints: ['run `vome image list`, or add it with `vome image add`'] });
  }
  return image;
}

/**
 * Places an image on a host, read-only, unless it is there already with the
 * right checksum. The upload goes to a temporary name of its own and is
 * renamed only after its checksum matches, so a killed upload leaves no image
 * that looks complete, and two placements of one image at once do not touch
 * each other's upload.
 */
export async function placeImage(context: HostContext, runner: CommandRunner, host: Host, image: Image): Promise<string> {
  const target = hostImagePath(host, image);
  // A placement vome recorded was verified then, so a size check suffices and
  // a create does not hash a multi-GiB base every time. An unrecorded file is
  // hashed. sha256sum reads standard input because, given a file name that
  // contains a backslash, it escapes the name and puts a backslash before the hash.
  const recorded = await context.db
    .selectFrom('image_placements')
    .select('path')
    .where('image_id', '=', image.id)
    .where('host_id', '=', host.id)
    .executeTakeFirst();
  const hashCheck = recorded?.path === target ? 'true' : `[ "$(sha256sum < "$f" | cut -d' ' -f1)" = ${shellQuote(image.sha256)} ]`;
  const present = await runner.run(
    `f=${shellQuote(target)}
if [ -f "$f" ] && [ "$(stat -c %s "$f")" = ${shellQuote(image.file_size_bytes)} ] && ${hashCheck}; then
  echo present
else
  echo absent
fi`,
    { label: 'look for image', timeoutMs: 10 * 60_000 },
  );
  if (present.stdout.trim() !== 'present') {
    const folder = `${host.data_dir}/images`;
    const partial = `${target}.part-${randomUUID()}`;
    // Uploads unchanged for an hour belong to placements that died.
    await runner.run(
      `mkdir -p ${shellQuote(folder)} && chmod 0755 ${shellQuote(folder)}
find ${shellQuote(folder)} -maxdepth 1 -type f -name ${shellQuote(`${target.slice(folder.length + 1)}.part-*`)} -mmin +60 -delete`,
      { label: 'prepare image folder', timeoutMs: 30_000 },
    );
    await runner.putFile(storedImagePath(context.config.home, image), partial, { timeoutMs: 30 * 60_000 });
    // mv -n never replaces a file, so when another placement renamed its
    // upload first, this upload stays and is dropped if that file is right.
    // Its exit status after skipping differs between coreutils versions, so
    // the script tests whether the upload is still there instead.
    await runner.run(
      `f=${shellQuote(partial)}
target=${shellQuote(target)}
expected=${shellQuote(image.sha256)}
sum=$(sha256sum < "$f" | cut -d' ' -f1)
if [ "$sum" != "$expected" ]; then rm -f "$f"; echo "checksum $sum of the upload does not match" >&2; exit 3; fi
chmod 0444 "$f"
mv -n -- "$f" "$target" || true
if [ -e "$f" ]; then
  if [ -f "$target" ] && [ "$(sha256sum < "$target" | cut -d' ' -f1)" = "$expected" ]; then
    rm -f "$f"
  else
    mv -f -- "$f" "$target"
  fi
fi`,
      { label: 'verify image', timeoutMs: 10 * 60_000 },
    );
  }
  await context.db
    .insertInto('image_placements')
    .values({ image_id: image.id, host_id: host.id, path: target })
    .onConflict((conflict) => conflict.columns(['image_id', 'host_id']).doUpdateSet({ path: target }))
    .execute();
  return target;
}
