// The page a person uses, in headless Chromium: drop five files on an order,
// see v1..v5 listed. A screenshot is kept in artifacts/ (not in git).
import fs from 'fs';
import path from 'path';
import type { Server } from 'http';
import { chromium, type Browser } from 'playwright-core';
import { createApp } from '../examples/upload-service/src/app';
import { testDatabase, expectGapless, uri } from './support/db';
import { makeRepository, makeService } from './support/service';
import type { AssetRepositoryPort } from '../examples/upload-service/src/asset-repository';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
const maybe = fs.existsSync(CHROMIUM) ? test : test.skip;

let t: any;
let repository: AssetRepositoryPort;
let cleanup: () => Promise<void>;
let server: Server;
let browser: Browser | null = null;

beforeAll(async () => {
  t = await testDatabase(__filename);
  repository = await makeRepository('addon', uri() as string, t.dbName, 'page');
  const made = await makeService(repository, t.db, 'page');
  cleanup = made.cleanup;
  server = createApp({ service: made.service }).listen(0);
});
afterAll(async () => {
  if (browser) await browser.close();
  server.close();
  await repository.close();
  await cleanup();
  await t.done();
});

maybe('uploading 5 files in one go lists v1..v5 on the page', async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const { port } = server.address() as { port: number };
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.fill('#order', 'ord-page');
  await page.dispatchEvent('#order', 'change');
  await page.setInputFiles(
    '#files',
    [1, 2, 3, 4, 5].map((i) => ({ name: `drawing-${i}.pdf`, mimeType: 'application/pdf', buffer: Buffer.from(`%PDF drawing ${i}`) })),
  );
  await page.waitForFunction(() => document.querySelectorAll('#versions tr').length === 5);
  const labels = await page.$$eval('#versions tr td.v', (cells) => cells.map((c) => c.textContent));
  expect(labels).toEqual(['v5', 'v4', 'v3', 'v2', 'v1']);
  expect(await page.textContent('#status')).toMatch(/stored v1, v2, v3, v4, v5/);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'upload-page.png'), fullPage: true });
  await expectGapless(t.db, 'page', 'ord-page', 5);
}, 60000);
