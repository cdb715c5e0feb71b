// The HTTP face of the upload service: Express routes over AssetService.
// Everything a client can abuse is bounded here (see limits.ts).
import express, { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import path from 'path';
import { pipeline } from 'stream/promises';
import { AssetService, isOutcomeUnknown, NotFoundError, UploadedFile } from './asset-service';
import { setFileHeaders } from './file-response';
import { errorHandler, HttpError } from './http-errors';
import { idempotencyKey, uploadId } from './idempotency';
import { limitInFlight } from './in-flight';
import { Limits, withDefaults } from './limits';
import { fileStoreStorage, StreamedFile } from './upload-storage';

export interface AppOptions extends Partial<Limits> {
  service: AssetService;
}

function positiveInt(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || n < 1 || n > max) {
    throw new HttpError(400, `${name} must be an integer from 1 to ${max}`, 'ERR_QUERY', undefined);
  }
  return n;
}

export function createApp({ service, ...given }: AppOptions): express.Express {
  const limits = withDefaults(given);
  const { files } = service;
  const upload = multer({
    storage: fileStoreStorage(files),
    defParamCharset: 'utf8', // browsers send UTF-8 names; multer's default reads them as Latin-1
    limits: {
      fileSize: limits.maxFileSize,
      files: limits.maxFiles,
      fields: limits.maxFields,
      fieldSize: limits.maxFieldSize,
      fieldNameSize: 100,
      parts: limits.maxFiles + limits.maxFields,
      headerPairs: 20,
    },
    fileFilter: (_req, file, cb) => {
      if ([...file.originalname].length > limits.maxFileNameLength) {
        cb(new HttpError(400, `a file name is longer than ${limits.maxFileNameLength} characters`, 'ERR_FILE_NAME_TOO_LONG'));
      } else cb(null, true);
    },
  });
  // Anything multer reports that is neither a limit nor the disk's (a system
  // call's error, ENOSPC say, which may reach multer through the file's stream) is a malformed body.
  const receive = (req: Request, res: Response, next: NextFunction) =>
    upload.array('files', limits.maxFiles)(req, res, (err?: any) => {
      if (!err || err instanceof multer.MulterError || err instanceof HttpError || err.syscall) return next(err);
      next(new HttpError(400, `malformed multipart body: ${err.message}`, 'ERR_MALFORMED_BODY'));
    });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.static(path.join(__dirname, '..', 'public')));

  // A malformed Idempotency-Key is refused before any byte of the body is read.
  const checkKey = (req: Request, _res: Response, next: NextFunction) => {
    try {
      idempotencyKey(req.get('Idempotency-Key'));
      next();
    } catch (err) {
      next(err);
    }
  };

  app.post('/orders/:orderId/assets', limitInFlight(limits.maxUploadsInFlight), checkKey, receive, async (req: Request, res: Response, next: NextFunction) => {
    const streamed = (req.files as StreamedFile[] | undefined) ?? [];
    let handedOver = false; // once the service has the files, it removes what it must
    try {
      if (streamed.length === 0) {
        throw new HttpError(400, 'no file uploaded: send multipart form-data with one or more "files" fields', 'ERR_NO_FILE');
      }
      const key = idempotencyKey(req.get('Idempotency-Key'));
      const by = req.body?.uploadedBy;
      const uploadedBy = typeof by === 'string' && by !== '' ? by : undefined; // the uploader's user id, when given
      if (uploadedBy !== undefined && [...uploadedBy].length > limits.maxUploadedByLength) {
        throw new HttpError(400, `uploadedBy is longer than ${limits.maxUploadedByLength} characters`, 'ERR_UPLOADED_BY_TOO_LONG');
      }
      const { orderId } = req.params;
      const uploads: UploadedFile[] = streamed.map((f, i) => ({
        originalname: f.originalname,
        mimetype: f.mimetype,
        size: f.size,
        storageKey: f.storageKey,
        ...(key !== undefined ? { _id: uploadId(orderId, key, i) } : {}),
      }));
      handedOver = true;
      // Each file is its own upload with its own version, in the order sent.
      const results = await service.uploadAssets(uploads, orderId, uploadedBy);
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
      const created = results.filter((r): r is PromiseFulfilledResult<any> => r.status === 'fulfilled').map((r) => r.value);
      // All failed: answer as the failure the client should act on, an unknown outcome first.
      if (created.length === 0) throw failures.find(isOutcomeUnknown) ?? failures[0];
      res.status(failures.length ? 207 : 201).json({ assets: created, errors: failures.map((e) => String(e.message)) });
    } catch (err) {
      if (!handedOver) await Promise.all(streamed.map((f) => files.remove(f.storageKey)));
      next(err);
    }
  });

  app.get('/orders/:orderId/assets', async (req, res, next) => {
    try {
      const limit = positiveInt(req.query.limit, 'limit', limits.maxPageSize) ?? limits.pageSize;
      const before = positiveInt(req.query.after, 'after');
      const assets = await service.listAssets(req.params.orderId, { limit, before });
      // `after` continues below the last version listed (newest first).
      res.json({ assets, next: assets.length === limit ? assets[assets.length - 1].version : null });
    } catch (err) {
      next(err);
    }
  });

  app.get('/orders/:orderId/assets/:version', async (req, res, next) => {
    try {
      const version = Number(req.params.version.replace(/^v/, ''));
      if (!Number.isInteger(version) || version < 1) throw new NotFoundError(`no version ${req.params.version}`);
      const { asset, stream, size } = await service.openAssetFile(req.params.orderId, version);
      setFileHeaders(res, asset, size);
      // Past the headers there is nothing left to answer: a client gone mid-download just ends it.
      await pipeline(stream, res).catch(() => res.destroy());
    } catch (err) {
      next(err);
    }
  });

  app.use(errorHandler);
  return app;
}
