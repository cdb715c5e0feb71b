// Where the uploaded bytes go: one file per upload under a directory. The
// asset record keeps only its key.
import { randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import path from 'path';

export class FileStore {
  constructor(private readonly dir: string) {}

  async put(bytes: Buffer): Promise<string> {
    await fs.mkdir(this.dir, { recursive: true });
    const key = randomUUID();
    await fs.writeFile(path.join(this.dir, key), bytes);
    return key;
  }

  get(key: string): Promise<Buffer> {
    if (!/^[0-9a-f-]{36}$/.test(key)) throw new Error(`bad storage key ${key}`);
    return fs.readFile(path.join(this.dir, key));
  }

  async remove(key: string): Promise<void> {
    await fs.rm(path.join(this.dir, key), { force: true });
  }
}
