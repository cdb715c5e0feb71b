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

export interface AssetRepositoryOptions {
  /** Default: process.env.MONGODB_URI. */
  uri?: string;
  /** Default: the database named in the URI, else "test". */
  dbName?: string;
  /** Default: "assets". */
  collection?: string;
  /** Attempts after the first that may be lost to concurrent writers. Default 5. */
  maxRetries?: number;
  /** Batch concurrent uploads of one order into one insertMany. Default true. */
  coalesce?: boolean;
  /** Accepted for old callers; no effect: every batch reads the order's highest version. */
  versionMemory?: number | boolean;
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

export class AssetRepository {
  constructor(options?: AssetRepositoryOptions);
  createWithAtomicVersion<T extends AssetInput>(data: T): Promise<StoredAsset<T>>;
  createManyWithAtomicVersion<T extends Omit<AssetInput, 'orderId'>>(
    orderId: OrderId,
    items: T[],
  ): Promise<Array<StoredAsset<T & { orderId: OrderId }>>>;
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
  reason: 'REPLY_LOST' | 'WRITE_CONCERN' | 'RECOVERY_FAILED' | 'UNKNOWN' | string;
  _id: unknown;
  cause?: AssetError;
}
export class BatchError extends AssetError {
  code: 'ERR_ASSET_BATCH_PARTIAL';
  stored: number;
  failed: number;
  results: Array<PromiseSettledResult<StoredAsset>>;
}
