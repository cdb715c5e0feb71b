// The page a person uses, in headless Chromium: drop five files on an order,
// see v1..v5 listed; a non-ASCII name arrives intact (issue 10, row 5); an
// uploaded HTML or SVG with script never runs on the service's origin (row 1).
// A screenshot is kept in artifacts/ (not in git).
import fs from 'fs';
import path from 'path';
import type { Server } from 'http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createApp } from '../src/app';
import { testDatabase, expectGapless, uri } from '../../../test/support/db';
import { expectConsistent, idOf, hexOf } from './support/service';
import { makeRepository, makeService } from './support/service';
import { needs } from '../../../test/support/needs';
import type { AssetRepositoryPort } from '../src/asset-repository';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', '..', '..', 'artifacts');
const maybe = needs('chromium').test;

let t: any;
let repository: AssetRepositoryPort;
let cleanup: () => Promise<void>;
let dir: string;
let server: Server;
let browser: Browser | null = null;

beforeAll(async () => {
  t = await testDatabase(__filename);
  repository = await makeRepository('addon', uri() as string, t.dbName, 'page');
  const made = await makeService(repository, t.db, 'page');
  ({ cleanup, dir } = made);
  server = createApp({ service: made.service, pageSize: 4 }).listen(0); // 4: five uploads take two pages
});
afterAll(async () => {
  if (browser) await browser.close();
  server.close();
  await repository.close();
  await cleanup();
  await t.done();
});

async function openPage(order: string): Promise<Page> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const { port } = server.address() as { port: number };
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.fill('#order', hexOf(order)); // orders are ObjectIds; the name is for the test to read
  await page.dispatchEvent('#order', 'change');
  return page;
}

maybe(
  'uploading 5 files in one go lists v5..v2, then v1 on the next page',
  async () => {
    const page = await openPage('ord-page');
    await page.setInputFiles(
      '#files',
      [1, 2, 3, 4, 5].map((i) => ({ name: `drawing-${i}.pdf`, mimeType: 'application/pdf', buffer: Buffer.from(`%PDF drawing ${i}`) })),
    );
    // The status comes after the fresh listing.
    await page.waitForFunction(() => (document.getElementById('status')?.textContent ?? '').startsWith('stored'));
    await page.waitForFunction(() => document.querySelectorAll('#versions tr').length === 4);
    expect(await page.isVisible('#more')).toBe(true);
    await page.click('#more');
    await page.waitForFunction(() => document.querySelectorAll('#versions tr').length === 5);
    await page.waitForFunction(() => (document.getElementById('more') as HTMLButtonElement).hidden);
    expect(await page.isVisible('#more')).toBe(false);
    const labels = await page.$$eval('#versions tr td.v', (cells) => cells.map((c) => c.textContent));
    expect(labels).toEqual(['v5', 'v4', 'v3', 'v2', 'v1']);
    expect(await page.textContent('#status')).toMatch(/stored v1, v2, v3, v4, v5/);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'upload-page.png'), fullPage: true });
    await expectGapless(t.db, 'page', idOf('ord-page'), 5);
  },
  60000,
);

maybe(
  'row 5: a non-ASCII file name picked in the browser is stored and listed exactly',
  async () => {
    const page = await openPage('ord-utf8');
    const name = 'Ünïcødé-日本.txt';
    await page.setInputFiles('#files', [{ name, mimeType: 'text/plain', buffer: Buffer.from('héllo') }]);
    await page.waitForFunction(() => document.querySelectorAll('#versions tr').length === 1);
    expect(await page.textContent('#versions tr a')).toBe(name);
    const [doc] = await expectGapless(t.db, 'page', idOf('ord-utf8'), 1);
    expect(doc.fileName).toBe(name);
    const disposition = await page.evaluate(async (url) => (await fetch(url)).headers.get('content-disposition'), `/orders/${hexOf('ord-utf8')}/assets/1`);
    expect(decodeURIComponent(/filename\*=UTF-8''(.+)$/.exec(disposition!)![1])).toBe(name);
    await page.close();
  },
  60000,
);

// Each payload, if it ran, would upload a file to order "pwned" and raise an alert.
const STEAL = `const f = new FormData(); f.append('files', new Blob([document.cookie + 'stolen']), 'stolen.txt');
fetch('/orders/${hexOf('pwned')}/assets', { method: 'POST', body: f }); alert('xss');`;
const PAYLOADS = [
  { name: 'evil.html', mimeType: 'text/html', buffer: Buffer.from(`<!doctype html><body><script>${STEAL}</script></body>`) },
  {
    name: 'evil.svg',
    mimeType: 'image/svg+xml',
    buffer: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" onload="${STEAL.replace(/"/g, '&quot;')}"><script>${STEAL}</script></svg>`),
  },
];

maybe(
  'row 1: HTML and SVG uploads with script, opened every way the page allows, never run',
  async () => {
    const page = await openPage('ord-xss');
    const dialogs: string[] = [];
    browser!.contexts().forEach((c) => c.on('page', (p) => p.on('dialog', (d) => (dialogs.push(d.message()), d.dismiss()))));
    page.on('dialog', (d) => (dialogs.push(d.message()), d.dismiss()));
    await page.setInputFiles('#files', PAYLOADS);
    await page.waitForFunction(() => document.querySelectorAll('#versions tr').length === 2);

    const { port } = server.address() as { port: number };
    for (const version of [1, 2]) {
      const url = `http://127.0.0.1:${port}/orders/${hexOf('ord-xss')}/assets/${version}`;
      // As a frame of the service's own page, as <object> and <img>, and as the link the page shows.
      await page.evaluate((src) => {
        const frame = document.createElement('iframe');
        frame.src = src;
        const object = document.createElement('object');
        object.data = src;
        const img = document.createElement('img');
        img.src = src;
        document.body.append(frame, object, img);
      }, url);
      await page.click(`#versions tr:nth-child(${3 - version}) a`).catch(() => {});
      // Straight to it in a tab: a download, not a document.
      const tab = await browser!.newPage();
      tab.on('dialog', (d) => (dialogs.push(d.message()), d.dismiss()));
      await tab.goto(url).catch(() => {});
      await tab.close();
    }
    await page.waitForTimeout(1500); // what a running script would need to send its request
    expect(dialogs).toEqual([]);
    expect(await t.db.collection('page').countDocuments({ orderId: idOf('pwned') })).toBe(0);
    const stored = await expectGapless(t.db, 'page', idOf('ord-xss'), 2);
    expect(stored.map((d: any) => d.fileName)).toEqual(['evil.html', 'evil.svg']);
    await expectConsistent(t.db, 'page', dir);
    await page.close();
  },
  60000,
);
