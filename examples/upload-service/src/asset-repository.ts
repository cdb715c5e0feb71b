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
  createWithAtomicVersion(data: NewAsset): Promise<Asset>;
  close(): Promise<void>;
}
