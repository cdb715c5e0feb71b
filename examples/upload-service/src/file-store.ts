// Where the uploaded bytes go: one file per upload under a directory. The
// asset record keeps only its key.
import { createHash, randomUUID } from 'crypto';
import { createWriteStream, promises as fs, ReadStream } from 'fs';
import path from 'path';
import { Transform } from 'stream';
import type { Readable } from 'stream';
import { pipeline } from 'stream/promises';

// A random key (a UUID), or one named after the asset's _id (24 hex digits)
// when the upload's _id is known before it is stored (idempotent retries).
const KEY = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{24})$/;

const MARKER = '.unsettled';

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

  /**
   * Streams a file in, never holding it in memory; a partly written file is
   * removed on any error. Hashes it on the way (an Idempotency-Key's fingerprint).
   */
  async write(source: Readable): Promise<{ key: string; size: number; sha256: string }> {
    await fs.mkdir(this.dir, { recursive: true });
    const key = randomUUID();
    const out = createWriteStream(this.path(key), { flags: 'wx' });
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(chunk, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await this.removingOnError(key, () => pipeline(source, hashing, out));
    return { key, size: out.bytesWritten, sha256: hash.digest('hex') };
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
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
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
    await fs.rm(this.markerPath(key), { force: true });
  }

  /**
   * A marker beside a file kept after an unknown outcome: the upload may
   * still be settled by a retry, so the file stays until the orphan grace
   * period is over, and an operator can see why it is there.
   */
  async markUnsettled(key: string, note: { _id: string; reason?: string }): Promise<void> {
    await fs.writeFile(
      this.markerPath(key),
      `${JSON.stringify({ ...note, since: new Date().toISOString(), note: 'upload outcome unknown; kept for a retry with the same Idempotency-Key to settle it' })}\n`,
    );
  }

  async clearMarker(key: string): Promise<void> {
    await fs.rm(this.markerPath(key), { force: true });
  }

  async isMarked(key: string): Promise<boolean> {
    return fs.access(this.markerPath(key)).then(
      () => true,
      () => false,
    );
  }

  /** Keys of files last written before `before` (epoch ms). */
  async keysOlderThan(before: number): Promise<string[]> {
    const old: string[] = [];
    for (const key of await this.keys()) {
      const stat = await fs.stat(this.path(key)).catch(() => null);
      if (stat && stat.mtimeMs < before) old.push(key);
    }
    return old;
  }

  /** Every key stored; for consistency checks. */
  async keys(): Promise<string[]> {
    const names = await fs.readdir(this.dir).catch((err) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
    return names.filter((n) => KEY.test(n));
  }

  private path(key: string): string {
    return path.join(this.dir, checkKey(key));
  }

  private markerPath(key: string): string {
    return `${this.path(key)}${MARKER}`;
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
