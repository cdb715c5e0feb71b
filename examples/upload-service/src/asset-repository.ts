// The one interface AssetService depends on: the reference design's
// repository signature. Both repositories satisfy it: the reference design on
// Mongoose, and atomic-asset-version in model mode, on the same model.
import type { IAsset } from './asset-model';

export type Asset = IAsset;

export interface AssetRepositoryPort {
  /** With an `_id`, a repository that supports it stores that upload at most once however often it is called. */
  createWithAtomicVersion(data: Partial<IAsset>, retryCount?: number): Promise<IAsset>;
  close(): Promise<void>;
}
