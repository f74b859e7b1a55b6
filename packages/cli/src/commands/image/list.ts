import type { Image } from '@vome/core';
import { BaseCommand } from '../../lib/base-command.js';
import { formatBytes, table } from '../../lib/render.js';

export interface ImageJson {
  id: string;
  name: string;
  format: string;
  virtualSizeBytes: number;
  fileSizeBytes: number;
  sha256: string;
  source: string;
  createdAt: string;
}

export function imageJson(image: Image): ImageJson {
  return {
    id: image.id,
    name: image.name,
    format: image.format,
    virtualSizeBytes: Number(image.virtual_size_bytes),
    fileSizeBytes: Number(image.file_size_bytes),
    sha256: image.sha256,
    source: image.source,
    createdAt: image.created_at.toISOString(),
  };
}

export default class ImageList extends BaseCommand {
  static override summary = 'List base images.';
  static override examples = ['<%= config.bin %> image list', '<%= config.bin %> image list --json'];

  async run(): Promise<{ images: ImageJson[] }> {
    const { listImages } = await import('@vome/core');
    const images = (await listImages(await this.db())).map(imageJson);
    if (!this.jsonEnabled()) {
      this.log(
        images.length === 0
          ? 'no images'
          : table(['NAME', 'FORMAT', 'VIRTUAL SIZE', 'SHA-256'], images.map((i) => [i.name, i.format, formatBytes(i.virtualSizeBytes), i.sha256])),
      );
    }
    return { images };
  }
}
