// The one interface AssetService depends on. Both repositories below satisfy
// it: the reference design on Mongoose, and atomic-asset-version.
import type { ObjectId } from 'bson';

export interface NewAsset {
  orderId: string;
  fileName: string;
  mimeType: string;
  fileSize: number;
  storageKey: string;
  uploadedBy: string;
}

export interface Asset extends NewAsset {
  _id: ObjectId;
  version: number;
  versionLabel: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface AssetRepositoryPort {
  /** With an `_id`, a repository that supports it stores that upload at most once however often it is called. */
  createWithAtomicVersion(data: NewAsset & { _id?: ObjectId }): Promise<Asset>;
  close(): Promise<void>;
}
