// The asset as a real upload service declares it: the order and the uploader
// are references to other collections' documents, the file's URL is required,
// a status with a default, Mongoose's timestamps, and a field derived in a
// pre('save') hook. Both repositories use this one model: the reference
// design's (mongoose-asset-repository.ts) and atomic-asset-version's model
// mode (new AssetRepository({ model })).
import { Connection, Model, Schema, Types } from 'mongoose';

export interface IAsset {
  _id: Types.ObjectId;
  orderId: Types.ObjectId;
  uploadedBy?: Types.ObjectId;
  fileName: string;
  fileUrl: string;
  mimeType: string;
  fileSize: number;
  storageKey: string;
  /** Derived from fileName by the pre('save') hook. */
  extension?: string;
  status: 'active' | 'archived';
  version: number;
  versionLabel: string;
  createdAt: Date;
  updatedAt: Date;
}

export const assetSchema = new Schema<IAsset>(
  {
    orderId: { type: Schema.Types.ObjectId, ref: 'Order', required: true, index: true },
    uploadedBy: { type: Schema.Types.ObjectId, ref: 'User' },
    fileName: { type: String, required: true },
    fileUrl: { type: String, required: true },
    mimeType: { type: String, required: true },
    fileSize: { type: Number, required: true, min: 0 },
    storageKey: { type: String, required: true },
    extension: { type: String },
    status: { type: String, enum: ['active', 'archived'], default: 'active' },
    version: { type: Number, required: true, min: 1 },
    versionLabel: { type: String, required: true },
  },
  { timestamps: true },
);
assetSchema.index({ orderId: 1, version: 1 }, { unique: true });

// A field derived from the file. (A field derived from the version cannot be
// stored from a pre('save') hook with atomic-asset-version: the version is
// assigned by the insert, after the hooks; such a hook is refused when the
// repository is constructed. versionLabel is the one the repository derives.)
assetSchema.pre('save', function deriveExtension() {
  const dot = this.fileName.lastIndexOf('.');
  this.extension = dot > 0 ? this.fileName.slice(dot + 1).toLowerCase() : '';
});

export function assetModel(connection: Connection, collection: string): Model<IAsset> {
  return connection.models[`Asset_${collection}`] ?? connection.model<IAsset>(`Asset_${collection}`, assetSchema, collection);
}
