// The upload service as an existing app has it. It depends only on
// AssetRepositoryPort: swapping the Mongoose repository for
// atomic-asset-version changes nothing here.
import type { ReadStream } from 'fs';
import { ObjectId } from 'bson';
import type { Collection } from 'mongodb';
import type { Asset, AssetRepositoryPort } from './asset-repository';
import type { FileStore } from './file-store';
import { IdempotencyKeys, KeyRecord } from './idempotency';

export interface UploadedFile {
  originalname: string;
  mimetype: string;
  size: number;
  /** The bytes still to store... */
  buffer?: Buffer;
  /** ...or the key under which they are already in the file store (streamed in by the HTTP layer). */
  storageKey?: string;
  /** The upload's _id when the caller makes it, so that a retry of it is recognised (Idempotency-Key). */
  _id?: ObjectId;
}

export class NotFoundError extends Error {}

/** An order or user id that is not an ObjectId: the client's mistake (400). */
export class InvalidIdError extends Error {
  readonly name = 'ValidationError';
  readonly code = 'ERR_INVALID_ID';
  constructor(readonly field: string) {
    super(`${field} must be an ObjectId: 24 hexadecimal digits`);
  }
}

/** Ids arrive as text (a URL, a form field); the records hold ObjectIds. */
function toObjectId(id: string, field: string): ObjectId {
  if (!/^[0-9a-f]{24}$/i.test(id)) throw new InvalidIdError(field);
  return new ObjectId(id);
}

/** Where a CDN in front of the file store would serve the bytes; this example serves them by version (see versionUrl). */
const fileUrl = (storageKey: string) => `/files/${storageKey}`;

/** Where this service serves a version's bytes. */
export const versionUrl = (orderId: string, version: number) => `/orders/${orderId}/assets/${version}`;

export interface ServiceOptions {
  /** Where Idempotency-Keys and their requests' fingerprints are kept; without it a key is not checked against its first request. */
  keys?: Collection<KeyRecord>;
  /** The server-side bound on every read and key lookup. */
  maxTimeMS?: number;
}

/**
 * What a listing shows, and all it reads: however large an order's records
 * (say, a long uploadedBy stored before it was capped), a page stays small.
 */
export type AssetSummary = Pick<Asset, 'version' | 'versionLabel' | 'fileName' | 'mimeType' | 'fileSize' | 'createdAt'>;
const LISTED_FIELDS = { _id: 0, version: 1, versionLabel: 1, fileName: 1, mimeType: 1, fileSize: 1, createdAt: 1 } as const;

/** The one outcome that is neither success nor failure: the record may or may not be stored. */
export function isOutcomeUnknown(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ERR_ASSET_OUTCOME_UNKNOWN';
}

export class AssetService {
  readonly idempotency: IdempotencyKeys;
  private readonly maxTimeMS?: number;

  constructor(
    private readonly assetRepository: AssetRepositoryPort,
    /** Public so that the HTTP layer can stream uploads into it. */
    readonly files: FileStore,
    private readonly assets: Collection<Asset>,
    options: ServiceOptions = {},
  ) {
    this.maxTimeMS = options.maxTimeMS;
    this.idempotency = new IdempotencyKeys(options.keys, options.maxTimeMS);
  }

  async uploadAsset(file: UploadedFile, orderId: string, uploadedBy?: string): Promise<Asset> {
    const [result] = await this.uploadAssets([file], orderId, uploadedBy);
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  }

  /**
   * Several files of one upload: the bytes are stored in parallel, then the
   * records are created in the order the files came, so their versions
   * follow that order.
   */
  async uploadAssets(files: UploadedFile[], orderId: string, uploadedBy?: string): Promise<PromiseSettledResult<Asset>[]> {
    const stored = await Promise.allSettled(files.map((f) => this.store(f)));
    return Promise.allSettled(
      files.map((file, i) => {
        const s = stored[i];
        return s.status === 'fulfilled' ? this.record(file, s.value, orderId, uploadedBy) : Promise.reject(s.reason);
      }),
    );
  }

  /**
   * The bytes' key, and whether this call wrote them. With an _id, the bytes
   * are named after it, so every attempt of one upload points at one file.
   */
  private async store(file: UploadedFile): Promise<{ key: string; ours: boolean }> {
    const key = file.storageKey ?? (await this.files.put(file.buffer ?? Buffer.alloc(0)));
    if (!file._id) return { key, ours: true };
    const named = file._id.toHexString();
    return { key: named, ours: await this.files.adopt(key, named) };
  }

  private async record(file: UploadedFile, stored: { key: string; ours: boolean }, orderId: string, uploadedBy?: string): Promise<Asset> {
    try {
      const asset = await this.assetRepository.createWithAtomicVersion({
        ...(file._id ? { _id: file._id } : {}),
        orderId: toObjectId(orderId, 'orderId'),
        ...(uploadedBy !== undefined ? { uploadedBy: toObjectId(uploadedBy, 'uploadedBy') } : {}),
        fileName: file.originalname,
        fileUrl: fileUrl(stored.key),
        mimeType: file.mimetype,
        fileSize: file.size,
        storageKey: stored.key,
      });
      // A retry of an upload stored earlier under other bytes: those are the asset's.
      if (asset.storageKey !== stored.key && stored.ours) await this.files.remove(stored.key);
      else await this.files.clearMarker(asset.storageKey); // settled: a marker of an earlier attempt goes
      return asset;
    } catch (err) {
      // Certainly not stored: no orphan bytes. Outcome unknown: the record
      // may point at them, so they stay until a retry settles it or the
      // orphan sweep finds no record after its grace period; a marker says
      // so. Bytes an earlier attempt wrote are never ours to remove.
      if (isOutcomeUnknown(err)) {
        const unknown = err as { _id?: unknown; reason?: string };
        await this.files.markUnsettled(stored.key, { _id: String(file._id ?? unknown._id ?? ''), reason: unknown.reason }).catch(() => {});
      } else if (stored.ours) await this.files.remove(stored.key);
      throw err;
    }
  }

  /** Versions of an order, newest first; only the fields a listing shows, a page at a time. */
  listAssets(orderId: string, page: { limit?: number; before?: number } = {}): Promise<AssetSummary[]> {
    const id = toObjectId(orderId, 'orderId');
    const filter = page.before ? { orderId: id, version: { $lt: page.before } } : { orderId: id };
    const cursor = this.assets.find(filter, { projection: LISTED_FIELDS, ...this.readBound() }).sort({ version: -1 });
    if (page.limit) cursor.limit(page.limit);
    return cursor.toArray() as unknown as Promise<AssetSummary[]>;
  }

  private async find(orderId: string, version: number): Promise<Asset> {
    const asset = (await this.assets.findOne({ orderId: toObjectId(orderId, 'orderId'), version }, this.readBound())) as Asset | null;
    if (!asset) throw new NotFoundError('no such version'); // not echoing the request: it may be anything
    return asset;
  }

  private readBound(): { maxTimeMS?: number } {
    return this.maxTimeMS ? { maxTimeMS: this.maxTimeMS } : {};
  }

  /**
   * Removes files that no record names and that were last written more than
   * `graceMs` ago: what a crash mid-upload left, and files kept after an
   * unknown outcome that no retry came back to settle. Resolves the keys removed.
   */
  async removeOrphans(graceMs: number): Promise<Array<{ key: string; unsettled: boolean }>> {
    const old = await this.files.keysOlderThan(Date.now() - graceMs);
    const removed: Array<{ key: string; unsettled: boolean }> = [];
    for (let i = 0; i < old.length; i += 500) {
      const batch = old.slice(i, i + 500);
      const named = new Set(
        (await this.assets.find({ storageKey: { $in: batch } }, { projection: { _id: 0, storageKey: 1 }, ...this.readBound() }).toArray()).map((d) => d.storageKey),
      );
      for (const key of batch.filter((k) => !named.has(k))) {
        const unsettled = await this.files.isMarked(key);
        await this.files.remove(key);
        removed.push({ key, unsettled });
      }
    }
    return removed;
  }

  async getAssetFile(orderId: string, version: number): Promise<{ asset: Asset; bytes: Buffer }> {
    const asset = await this.find(orderId, version);
    return { asset, bytes: await this.files.get(asset.storageKey) };
  }

  /** As getAssetFile, streamed: a download never holds the file in memory. */
  async openAssetFile(orderId: string, version: number): Promise<{ asset: Asset; stream: ReadStream; size: number }> {
    const asset = await this.find(orderId, version);
    return { asset, ...(await this.files.open(asset.storageKey)) };
  }
}
