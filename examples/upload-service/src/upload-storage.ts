// multer's storage engine for the file store: each file is streamed from the
// request straight into the store, so a request in flight holds a few stream
// buffers, not its files (memoryStorage held ~190 MiB per 20 x 9 MiB request).
import type { Request } from 'express';
import type multer from 'multer';
import type { FileStore } from './file-store';

export type StreamedFile = Express.Multer.File & { storageKey: string; sha256: string };

export function fileStoreStorage(store: FileStore): multer.StorageEngine {
  return {
    _handleFile(_req: Request, file: Express.Multer.File, cb: (error?: Error | null, info?: Partial<StreamedFile>) => void) {
      // A file over the size limit is cut short, not read to its end: multer
      // waits for this write before it answers, and the part would only end
      // with the body (the error handler then closes the connection).
      file.stream.once('limit', () => file.stream.destroy(new Error('file over the size limit')));
      // On any error (client gone, disk full) the store has already removed the partial file.
      store.write(file.stream).then(({ key, size, sha256 }) => cb(null, { storageKey: key, size, sha256 }), cb);
    },
    _removeFile(_req: Request, file: Express.Multer.File, cb: (error: Error | null) => void) {
      // multer's cleanup after a failed request: files already streamed in go too.
      const key = (file as Partial<StreamedFile>).storageKey;
      if (!key) return cb(null);
      store.remove(key).then(() => cb(null), cb);
    },
  };
}
