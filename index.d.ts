// Types for atomic-asset-version. The runtime is lib/index.js.
import type { ObjectId } from 'bson';

export type OrderId = string | ObjectId;

/** The fields every upload needs; any other fields are stored as given. */
export interface AssetInput {
  orderId: OrderId;
  fileName: string;
  mimeType?: string;
  fileSize?: number;
  uploadedBy?: string;
}

/** What the repository adds to a stored asset. */
export interface VersionFields {
  _id: ObjectId;
  version: number;
  versionLabel: `v${number}`;
  createdAt: Date;
  updatedAt: Date;
}

export type StoredAsset<T extends AssetInput = AssetInput> = Omit<T, keyof VersionFields> & VersionFields;

export interface WriteConcern {
  w?: number | 'majority';
  j?: boolean;
  wtimeoutMS?: number;
}

/**
 * A Mongoose model (`mongoose.model(…)`, `connection.model(…)`), described
 * without importing Mongoose, which stays an optional peer dependency.
 */
export interface MongooseModelLike {
  new (...args: never[]): unknown;
  schema: object;
  collection: { collectionName: string };
  db: object;
}

/**
 * The app's names for the four fields the repository reads and writes, when
 * they are not orderId, fileName, version and versionLabel (each a top-level
 * field name of 1 to 60 bytes). `versionLabel: null` stores no label.
 */
export interface FieldNames {
  orderId?: string;
  fileName?: string;
  version?: string;
  versionLabel?: string | null;
}

export interface AssetRepositoryOptions {
  /**
   * Model mode: the model builds each upload as its save() would, and gives
   * the database, the collection and (unless `uri` is given) the connection.
   */
  model?: MongooseModelLike;
  /**
   * Plain mode: required unless process.env.MONGODB_URI is set. Model mode:
   * default the model's connection string, read when that connection opens
   * (the repository may be built before it does).
   */
  uri?: string;
  /** The app's field names; see FieldNames and docs/drop-in.md. */
  fields?: FieldNames;
  /** Default: the model's database, else the database named in the URI, else "test". */
  dbName?: string;
  /** Default: the model's collection, else "assets". */
  collection?: string;
  /** Attempts after the first that may be lost to concurrent writers. Default 5. */
  maxRetries?: number;
  /** Batch concurrent uploads of one order into one insertMany. Default true. */
  coalesce?: boolean;
  /** How long an upload whose reply was lost may take to settle before OutcomeUnknownError. Default 60000. */
  recoveryTimeMS?: number;
  /** Uploads per insertMany. Default 1000. */
  maxBatchSize?: number;
  writeConcern?: WriteConcern;
}

/** The addon's share of the libuv threadpool, for the whole process. */
export interface ThreadpoolUsage {
  size: number;
  slots: number;
  running: number;
  peak: number;
  environments: number;
  waiting: number;
}

export interface AssetRepositoryStats {
  uploads: number;
  succeeded: number;
  failed: number;
  outcomeUnknown: number;
  retries: number;
  retryRate: number;
  avgRetries: number;
  failedAfterMaxRetries: number;
  validationErrors: number;
  batches: number;
  queued: number;
  threadpool: ThreadpoolUsage;
}

/**
 * TAsset: in model mode, the app's document interface (`IAsset`), so the
 * repository satisfies the reference design's signature,
 * `createWithAtomicVersion(data: Partial<IAsset>, retryCount?: number): Promise<IAsset>`:
 * `new AssetRepository<IAsset>({ model: Asset })`. The model checks the
 * fields at run time, as save() does. In plain mode leave it out.
 * `retryCount`, the reference design's recursion counter, is accepted and ignored.
 */
export class AssetRepository<TAsset extends object = never> {
  constructor(options?: AssetRepositoryOptions);
  createWithAtomicVersion(data: Partial<TAsset>, retryCount?: number): Promise<TAsset>;
  createWithAtomicVersion<T extends AssetInput>(data: T, retryCount?: number): Promise<StoredAsset<T>>;
  createManyWithAtomicVersion(orderId: unknown, items: Array<Partial<TAsset>> & [Partial<TAsset>, ...Array<Partial<TAsset>>]): Promise<TAsset[]>;
  createManyWithAtomicVersion<T extends Omit<AssetInput, 'orderId'>>(orderId: OrderId, items: T[]): Promise<Array<StoredAsset<T & { orderId: OrderId }>>>;
  /** @deprecated Races with concurrent uploads; use createWithAtomicVersion. */
  getNextVersion(orderId: OrderId): Promise<number>;
  ensureIndex(): Promise<string>;
  stats(): AssetRepositoryStats;
  close(): Promise<void>;
}

export class AssetError extends Error {
  code: string | number;
  attempts?: number;
  orderId?: OrderId;
  errorLabels?: string[];
}
export class ValidationError extends AssetError {
  code: string;
  field: string;
}
export class VersionConflictError extends AssetError {
  code: 11000;
  reason: 'RETRIES_EXHAUSTED';
  attempts: number;
  /** As on the driver's duplicate-key error. */
  index: 0;
  keyPattern: { orderId: 1; version: 1 };
  keyValue: { orderId: unknown; version?: number };
}
export class DuplicateKeyError extends AssetError {
  code: 11000;
}
export class ServerError extends AssetError {
  code: number;
}
export class ConnectionError extends AssetError {
  code: 'ERR_ASSET_CONNECTION';
}
export class IndexError extends AssetError {
  code: 'ERR_ASSET_INDEX';
}
export class RepositoryClosedError extends AssetError {}
/** The upload may or may not be stored: settle it by calling again with the same data and `_id`. */
export class OutcomeUnknownError extends AssetError {
  code: 'ERR_ASSET_OUTCOME_UNKNOWN';
  retriable: false;
  reason: 'REPLY_LOST' | 'WRITE_CONCERN' | 'RECOVERY_FAILED' | 'NOT_LOOKED_UP' | 'RESULTS_LOST' | 'UNKNOWN' | string;
  /** Absent only with reason 'RESULTS_LOST' when the addon made the _id (see docs/errors.md). */
  _id: unknown;
  cause?: AssetError;
}
export class BatchError extends AssetError {
  code: 'ERR_ASSET_BATCH_PARTIAL';
  stored: number;
  failed: number;
  results: Array<PromiseSettledResult<StoredAsset>>;
}
