// The HTTP face of the upload service: Express routes over AssetService.
import express, { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import path from 'path';
import { AssetService, NotFoundError } from './asset-service';

export interface AppOptions {
  service: AssetService;
  /** Largest accepted file, in bytes. */
  maxFileSize?: number;
  maxFiles?: number;
}

/** Maps an error to an HTTP status; retries exhausted is a conflict the client may retry. */
function statusOf(err: any): { status: number; headers?: Record<string, string> } {
  if (err instanceof multer.MulterError) {
    return { status: err.code === 'LIMIT_FILE_SIZE' || err.code === 'LIMIT_FILE_COUNT' ? 413 : 400 };
  }
  if (err instanceof NotFoundError) return { status: 404 };
  switch (err && err.name) {
    case 'ValidationError':
      return { status: 400 };
    case 'VersionConflictError':
      return { status: 409, headers: { 'Retry-After': '1' } };
    case 'ConnectionError':
    case 'MongoServerSelectionError':
    case 'MongoNetworkError':
      return { status: 503, headers: { 'Retry-After': '5' } };
  }
  if (err && err.code === 11000) return { status: 409, headers: { 'Retry-After': '1' } }; // the reference design's exhausted retries
  return { status: 500 };
}

export function createApp({ service, maxFileSize = 10 * 1024 * 1024, maxFiles = 20 }: AppOptions): express.Express {
  const app = express();
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: maxFileSize, files: maxFiles } });

  app.use(express.static(path.join(__dirname, '..', 'public')));

  app.post('/orders/:orderId/assets', upload.array('files', maxFiles), async (req: Request, res: Response, next: NextFunction) => {
    try {
      const files = (req.files as Express.Multer.File[] | undefined) ?? [];
      if (files.length === 0) {
        res.status(400).json({ error: 'no file uploaded: send multipart form-data with one or more "files" fields', code: 'ERR_NO_FILE' });
        return;
      }
      const uploadedBy = typeof req.body?.uploadedBy === 'string' && req.body.uploadedBy !== '' ? req.body.uploadedBy : 'anonymous';
      // Each file is its own upload with its own version, in the order sent.
      const results = await service.uploadAssets(files, req.params.orderId, uploadedBy);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      const created = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<unknown>).value);
      if (failed && created.length === 0) throw failed.reason;
      res.status(failed ? 207 : 201).json({ assets: created, errors: results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason.message)) });
    } catch (err) {
      next(err);
    }
  });

  app.get('/orders/:orderId/assets', async (req, res, next) => {
    try {
      res.json({ assets: await service.listAssets(req.params.orderId) });
    } catch (err) {
      next(err);
    }
  });

  app.get('/orders/:orderId/assets/:version', async (req, res, next) => {
    try {
      const version = Number(req.params.version.replace(/^v/, ''));
      if (!Number.isInteger(version) || version < 1) throw new NotFoundError(`no version ${req.params.version}`);
      const { asset, bytes } = await service.getAssetFile(req.params.orderId, version);
      res.type(asset.mimeType || 'application/octet-stream');
      res.setHeader('Content-Disposition', `inline; filename="${encodeURIComponent(asset.fileName)}"`);
      res.send(bytes);
    } catch (err) {
      next(err);
    }
  });

  app.use((err: any, _req: Request, res: Response, _next: NextFunction) => {
    const { status, headers } = statusOf(err);
    if (headers) res.set(headers);
    res.status(status).json({ error: status === 500 ? 'internal error' : err.message, code: err.code, field: err.field });
    if (status === 500) console.error(err);
  });

  return app;
}
