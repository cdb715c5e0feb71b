'use strict';

// The "done when": an Express + Mongoose 9 app with its own field
// names switches by adding two fields to its schema and changing its create
// call to one repository built at module load; its own suite (below, the
// same assertions for both) passes unchanged. test/fixtures/bug-tracker/app.js.
const request = require('supertest');
const { testDatabase, uri, range } = require('./support/db');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

describe.each(['before', 'after'])('the bug tracker %s the swap', (variant) => {
  let bugTracker;
  const dbName = () => `${t.dbName.slice(0, 48)}_${variant}`;
  beforeAll(async () => {
    // Loaded as its test suite loads it: no database, no MONGODB_URI yet.
    const saved = process.env.MONGODB_URI;
    delete process.env.MONGODB_URI;
    process.env.BUG_TRACKER_VARIANT = variant;
    try {
      jest.isolateModules(() => {
        bugTracker = require('./fixtures/bug-tracker/app');
      });
    } finally {
      process.env.MONGODB_URI = saved;
      delete process.env.BUG_TRACKER_VARIANT;
    }
    await bugTracker.mongoose.connect(uri(), { dbName: dbName(), autoIndex: false });
  });
  afterAll(async () => {
    await bugTracker.mongoose.connection.dropDatabase();
    await bugTracker.mongoose.disconnect();
  });

  // ---- the app's own suite, unchanged by the swap ----
  test('POST stores an attachment and answers 201 with it', async () => {
    const res = await request(bugTracker.app).post('/bugs/BUG-1/attachments').send({ uploadedBy: 'ana', fileUrl: '/f/1', originalName: 'trace.log' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ bugId: 'BUG-1', uploadedBy: 'ana', fileUrl: '/f/1', originalName: 'trace.log' });
    expect(res.body._id).toMatch(/^[0-9a-f]{24}$/);
    expect(new Date(res.body.createdAt).getTime()).not.toBeNaN();
  });

  test('a missing field is a 400 and stores nothing', async () => {
    const res = await request(bugTracker.app).post('/bugs/BUG-2/attachments').send({ fileUrl: '/f/2', originalName: 'x.png' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/uploadedBy/);
    expect(await bugTracker.Attachment.countDocuments({ bugId: 'BUG-2' })).toBe(0);
  });

  test("GET lists a bug's attachments in upload order", async () => {
    for (const name of ['a.png', 'b.png']) {
      await request(bugTracker.app)
        .post('/bugs/BUG-3/attachments')
        .send({ uploadedBy: 'bo', fileUrl: `/f/${name}`, originalName: name });
    }
    const res = await request(bugTracker.app).get('/bugs/BUG-3/attachments');
    expect(res.status).toBe(200);
    expect(res.body.map((a) => a.originalName)).toEqual(['a.png', 'b.png']);
  });

  // ---- what the swap adds ----
  if (variant === 'after') {
    test('50 concurrent uploads to one bug through the route are stored as exactly 1..50', async () => {
      const responses = await Promise.all(
        range(50).map((i) =>
          request(bugTracker.app)
            .post('/bugs/BUG-9/attachments')
            .send({ uploadedBy: 'cy', fileUrl: `/f/${i}`, originalName: `${i}.png` }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(range(50).map(() => 201));
      const stored = await bugTracker.Attachment.find({ bugId: 'BUG-9' }).lean();
      expect(stored.map((d) => d.version).sort((a, b) => a - b)).toEqual(range(50));
      for (const d of stored) expect(d.versionLabel).toBe(`v${d.version}`);
    });
  }
});
