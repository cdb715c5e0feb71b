// Compiled by test/typescript.test.js with tsc --strict --noEmit. Each line
// marked as an expected error below must fail to compile, or tsc reports
// the marker as unused.
import { AssetRepository, ValidationError, VersionConflictError, BatchError, type StoredAsset } from 'atomic-asset-version';

interface Upload {
  orderId: string;
  fileName: string;
  fileSize: number;
  checksum: string;
}

export async function consumer(): Promise<void> {
  const repo = new AssetRepository({ uri: 'mongodb://localhost', collection: 'assets', maxRetries: 5, writeConcern: { w: 'majority' } });

  const asset = await repo.createWithAtomicVersion<Upload>({ orderId: 'o', fileName: 'a.pdf', fileSize: 1, checksum: 'x' });
  const version: number = asset.version;
  const label: string = asset.versionLabel;
  const created: Date = asset.createdAt;
  const checksum: string = asset.checksum; // extra fields keep their types
  const id: string = asset._id.toHexString();
  const typed: StoredAsset<Upload> = asset;
  void [version, label, created, checksum, id, typed];

  const many = await repo.createManyWithAtomicVersion('o', [{ fileName: 'a.pdf' }, { fileName: 'b.pdf' }]);
  const firstVersion: number = many[0].version;
  void firstVersion;

  const stats = repo.stats();
  const rate: number = stats.retryRate + stats.avgRetries + stats.failedAfterMaxRetries + stats.threadpool.slots;
  void rate;

  try {
    await repo.createWithAtomicVersion({ orderId: 'o', fileName: 'a.pdf' });
  } catch (err) {
    if (err instanceof ValidationError) void err.field.toUpperCase();
    if (err instanceof VersionConflictError) void (err.attempts + 1);
    if (err instanceof BatchError) void err.results.length;
  }
  await repo.close();

  // @ts-expect-error orderId is required
  await repo.createWithAtomicVersion({ fileName: 'a.pdf' });
  // @ts-expect-error fileName is required
  await repo.createWithAtomicVersion({ orderId: 'o' });
  // @ts-expect-error an orderId is a string or an ObjectId, not a query
  await repo.createWithAtomicVersion({ orderId: { $ne: null }, fileName: 'a.pdf' });
  // @ts-expect-error unknown option name
  new AssetRepository({ uri: 'mongodb://localhost', maxRetry: 3 });
  // @ts-expect-error maxRetries is a number
  new AssetRepository({ maxRetries: 'five' });
  // The app's own field names; a label may be switched off.
  new AssetRepository({ uri: 'mongodb://localhost', fields: { orderId: 'bugId', fileName: 'originalName', versionLabel: null } });
  // @ts-expect-error a field name is a string
  new AssetRepository({ uri: 'mongodb://localhost', fields: { orderId: 1 } });
}
