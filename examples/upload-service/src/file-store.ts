// Where the uploaded bytes go: one file per upload under a directory. The
// asset record keeps only its key.
import { randomUUID } from 'crypto';
import { createWriteStream, promises as fs, ReadStream } from 'fs';
import path from 'path';
import type { Readable } from 'stream';
import { pipeline } from 'stream/promises';

// A random key (a UUID), or one named after the asset's _id (24 hex digits)
// when the upload's _id is known before it is stored (idempotent retries).
const KEY = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{24})$/;

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new Error(`bad storage key ${key}`);
  return key;
}

export class FileStore {
  constructor(private readonly dir: string) {}

  async put(bytes: Buffer): Promise<string> {
    await fs.mkdir(this.dir, { recursive: true });
    const key = randomUUID();
    await this.removingOnError(key, () => fs.writeFile(this.path(key), bytes, { flag: 'wx' }));
    return key;
  }

  /** Streams a file in, never holding it in memory; a partly written file is removed on any error. */
  async write(source: Readable): Promise<{ key: string; size: number }> {
    await fs.mkdir(this.dir, { recursive: true });
    const key = randomUUID();
    const out = createWriteStream(this.path(key), { flags: 'wx' });
    await this.removingOnError(key, () => pipeline(source, out));
    return { key, size: out.bytesWritten };
  }

  /**
   * Gives the file under `from` the name `to`, unless `to` exists already: an
   * earlier attempt of the same upload stored it, and the first bytes win.
   * Resolves whether this call created `to`; `from` is gone either way.
   */
  async adopt(from: string, to: string): Promise<boolean> {
    let created = true;
    try {
      await fs.link(this.path(from), this.path(to));
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err;
      created = false;
    } finally {
      await this.remove(from);
    }
    return created;
  }

  get(key: string): Promise<Buffer> {
    return fs.readFile(this.path(key));
  }

  /** Opens the file now, so a missing one fails before any response is sent. */
  async open(key: string): Promise<{ stream: ReadStream; size: number }> {
    const handle = await fs.open(this.path(key), 'r');
    try {
      const { size } = await handle.stat();
      return { stream: handle.createReadStream(), size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await fs.rm(this.path(key), { force: true });
  }

  /** Every key stored; for consistency checks. */
  async keys(): Promise<string[]> {
    const names = await fs.readdir(this.dir).catch((err) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
    return names.filter((n) => KEY.test(n));
  }

  private path(key: string): string {
    return path.join(this.dir, checkKey(key));
  }

  private async removingOnError(key: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (err) {
      await fs.rm(this.path(key), { force: true });
      throw err;
    }
  }
}
