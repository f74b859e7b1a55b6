import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Actor } from '../audit/actor.js';
import { withAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { Host, Image } from '../db/schema.js';
import { ConflictError, InvalidInputError, NotFoundError, VomeError } from '../errors/index.js';
import type { HostContext } from '../hosts/hosts.js';
import { requireDnsLabel } from '../naming/dns-label.js';
import { type CommandRunner, shellQuote } from '../runner/command-runner.js';
import { decompressXz, inspectImage, isXz, sha256File } from './image-file.js';

export interface AddImageInput {
  name: string;
  /** A local path or an https:// URL. */
  source: string;
  /** Expected SHA-256 of the source as given (before decompression). */
  sha256?: string;
}

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

async function download(url: string, target: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'follow' });
  } catch (error) {
    throw new VomeError('image_download_failed', `download of ${url} failed: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok || !response.body) {
    throw new VomeError('image_download_failed', `download of ${url} failed with HTTP ${response.status}`);
  }
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(target, { mode: 0o600 }));
}

/**
 * Registers a base image: fetches or reads it, checks the SHA-256 when given,
 * decompresses xz, reads its real format, and stores a read-only copy under
 * VOME_HOME from which hosts receive it. Nothing is kept when a check fails.
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
  const work = join(store, `.incoming-${randomUUID()}`);
  await mkdir(work, { mode: 0o700 });
  try {
    let sourcePath = input.source;
    if (/^https:\/\//i.test(input.source)) {
      sourcePath = join(work, 'download');
      await download(input.source, sourcePath);
    } else if (/^[a-z]+:\/\//i.test(input.source)) {
      throw new InvalidInputError(`invalid image source "${input.source}": give a local path or an https:// URL`);
    } else {
      await stat(sourcePath).catch((error: unknown) => {
        throw new InvalidInputError(`image file ${sourcePath} not found or not readable`, {
          hints: ['check the path, or give an https:// URL'],
          cause: error,
        });
      });
    }

    if (expected !== undefined) {
      const actual = await sha256File(sourcePath);
      if (actual !== expected) {
        throw new InvalidInputError(`SHA-256 mismatch for ${input.source}: expected ${expected}, got ${actual}`, {
          hints: ['download the image again, and check the checksum against the release page'],
        });
      }
    }

    let imagePath = sourcePath;
    if (await isXz(sourcePath)) {
      imagePath = join(work, 'image');
      await decompressXz(sourcePath, imagePath);
    }
    const info = await inspectImage(imagePath);
    const sha256 = await sha256File(imagePath);
    const size = (await stat(imagePath)).size;

    const finalPath = storedImagePath(context.config.home, { sha256, format: info.format });
    if (imagePath === input.source) {
      // The operator's own file is copied, never moved.
      imagePath = join(work, 'image');
      await copyFile(input.source, imagePath);
    }
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
 * right checksum. The upload goes to a temporary name and is renamed only
 * after its checksum matches, so a killed upload leaves no image that looks
 * complete.
 */
export async function placeImage(context: HostContext, runner: CommandRunner, host: Host, image: Image): Promise<string> {
  const target = hostImagePath(host, image);
  const present = await runner.run(
    `f=${shellQuote(target)}
if [ -f "$f" ] && [ "$(stat -c %s "$f")" = ${shellQuote(image.file_size_bytes)} ]; then echo present; else echo absent; fi`,
    { label: 'look for image', timeoutMs: 30_000 },
  );
  if (present.stdout.trim() !== 'present') {
    const partial = `${target}.part`;
    await runner.run(`mkdir -p ${shellQuote(`${host.data_dir}/images`)} && chmod 0755 ${shellQuote(`${host.data_dir}/images`)} && rm -f ${shellQuote(partial)}`, {
      label: 'prepare image folder',
      timeoutMs: 30_000,
    });
    await runner.putFile(storedImagePath(context.config.home, image), partial, { timeoutMs: 30 * 60_000 });
    await runner.run(
      `f=${shellQuote(partial)}
sum=$(sha256sum "$f" | cut -d' ' -f1)
if [ "$sum" != ${shellQuote(image.sha256)} ]; then rm -f "$f"; echo "checksum $sum does not match" >&2; exit 3; fi
chmod 0444 "$f"
mv -f "$f" ${shellQuote(target)}`,
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
