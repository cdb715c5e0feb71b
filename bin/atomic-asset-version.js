#!/usr/bin/env node
'use strict';

// npx atomic-asset-version doctor --uri URI [--db NAME] --collection NAME
//     [--fields JSON] [--fix] [--json]
// Read-only unless --fix. Exit codes: 0 clean, 1 problems (found, or left
// after --fix), 2 an error (bad arguments, no server, no driver).
// What it checks and repairs: lib/doctor.js and docs/drop-in.md.

const fs = require('fs');
const { doctor } = require('../lib/doctor');
const { parseFields } = require('../lib/options');

const USAGE = 'usage: atomic-asset-version doctor --uri URI [--db NAME] --collection NAME [--fields JSON] [--fix] [--json]';

class UsageError extends Error {}

function parseArgs(argv) {
  const [command, ...rest] = argv;
  if (command !== 'doctor') throw new UsageError(command === undefined ? USAGE : `unknown command "${command}"\n${USAGE}`);
  const args = { uri: process.env.MONGODB_URI, db: undefined, collection: undefined, fields: undefined, fix: false, json: false };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const value = () => {
      if (i + 1 >= rest.length) throw new UsageError(`${arg} needs a value\n${USAGE}`);
      return rest[++i];
    };
    switch (arg) {
      case '--uri':
        args.uri = value();
        break;
      case '--db':
        args.db = value();
        break;
      case '--collection':
        args.collection = value();
        break;
      case '--fields': {
        const text = value();
        try {
          args.fields = JSON.parse(text);
        } catch (err) {
          throw new UsageError(`--fields must be JSON such as '{"orderId":"bugId"}': ${err.message}`);
        }
        break;
      }
      case '--fix':
        args.fix = true;
        break;
      case '--json':
        args.json = true;
        break;
      default:
        throw new UsageError(`unknown argument "${arg}"\n${USAGE}`);
    }
  }
  if (!args.uri) throw new UsageError(`--uri is required (or set MONGODB_URI)\n${USAGE}`);
  if (!args.collection) throw new UsageError(`--collection is required\n${USAGE}`);
  try {
    args.fields = parseFields(args.fields);
  } catch (err) {
    throw new UsageError(`--fields: ${err.message}`);
  }
  return args;
}

/** The app's driver: its own mongodb, else the one its Mongoose brings. */
function driver() {
  const tries = [
    () => require(require.resolve('mongodb', { paths: [process.cwd()] })),
    () => require(require.resolve('mongoose', { paths: [process.cwd()] })).mongo,
    () => require('mongodb'),
  ];
  for (const attempt of tries) {
    try {
      const found = attempt();
      if (found && found.MongoClient) return found;
    } catch {
      // next
    }
  }
  throw new Error('the doctor uses the official MongoDB driver: install it beside your app (npm install mongodb), or Mongoose, which brings it');
}

function text(value, EJSON) {
  if (value === undefined) return '(none)';
  return EJSON.stringify(value, { relaxed: true });
}

function describeChange(c, fields, EJSON) {
  const parts = [`${fields.version}: ${text(c.from.version, EJSON)} → ${c.to.version}`];
  if (fields.versionLabel !== null) parts.push(`${fields.versionLabel}: ${text(c.from.label, EJSON)} → ${text(c.to.label, EJSON)}`);
  return `changed _id ${text(c._id, EJSON)} (${fields.orderId} ${text(c.order, EJSON)}): ${parts.join(', ')}`;
}

function summary(d, index, fields, EJSON) {
  const lines = [];
  lines.push(`duplicate (${fields.orderId}, ${fields.version}) pairs: ${d.duplicates.length}`);
  for (const dup of d.duplicates) {
    lines.push(
      `  ${fields.orderId} ${text(dup.order, EJSON)} ${fields.version} ${dup.version}: ${dup.ids.map((id) => text(id, EJSON)).join(', ')} (the earliest created, ${text(dup.kept, EJSON)}, keeps it)`,
    );
  }
  lines.push(`documents without a numeric ${fields.version}: ${d.unversioned.length}`);
  for (const u of d.unversioned) lines.push(`  _id ${text(u._id, EJSON)} (${fields.orderId} ${text(u.order, EJSON)}): ${fields.version} ${text(u.version, EJSON)}`);
  if (fields.versionLabel !== null) {
    lines.push(`labels that do not match their version: ${d.labels.length}`);
    for (const l of d.labels) lines.push(`  _id ${text(l._id, EJSON)}: ${fields.versionLabel} ${text(l.label, EJSON)}, ${fields.version} ${l.version}`);
  }
  if (d.noOrder.length > 0) {
    lines.push(`documents without ${fields.orderId} (not repaired: no order to number them in): ${d.noOrder.length}`);
    for (const id of d.noOrder) lines.push(`  _id ${text(id, EJSON)}`);
  }
  const states = {
    unique: `unique index "${index.name}" on { ${fields.orderId}: 1, ${fields.version}: 1 }: present`,
    absent: `unique index on { ${fields.orderId}: 1, ${fields.version}: 1 }: absent (the repository builds it on first use; --fix builds it once the data allows)`,
    'not-unique': `index "${index.name}" on { ${fields.orderId}, ${fields.version} } is not unique: drop it so the repository can build a unique one`,
    partial: `index "${index.name}" on { ${fields.orderId}, ${fields.version} } is partial: drop it so the repository can build a full unique one`,
  };
  lines.push(`index: ${states[index.state]}`);
  return lines;
}

async function main(argv) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const mongodb = driver();
  const { EJSON } = mongodb.BSON;
  // Ten seconds to find the server, unless the URI says otherwise.
  const client = new mongodb.MongoClient(args.uri, /[?&]serverSelectionTimeoutMS=/i.test(args.uri) ? {} : { serverSelectionTimeoutMS: 10000 });
  // Written at once, not queued: a change printed is a change kept, even if
  // the process dies on the next line.
  const out = (line) => fs.writeSync(process.stdout.fd, `${line}\n`);
  try {
    await client.connect();
    const coll = client.db(args.db).collection(args.collection);
    const { fields } = args;
    if (!args.json) out(`atomic-asset-version doctor: ${coll.dbName}.${coll.collectionName}${args.fix ? ' (--fix)' : ' (read-only)'}`);
    const killAfter = Number(process.env.AAV_DOCTOR_KILL_AFTER_CHANGES) || 0; // tests: a crash halfway
    const report = await doctor(coll, fields, {
      fix: args.fix,
      onChange: (c) => {
        if (!args.json) out(describeChange(c, fields, EJSON));
      },
      afterChange: (n) => {
        if (killAfter > 0 && n >= killAfter) process.kill(process.pid, 'SIGKILL');
      },
    });
    if (args.json) {
      out(
        EJSON.stringify(
          {
            database: coll.dbName,
            collection: coll.collectionName,
            fields,
            fix: args.fix,
            clean: report.clean,
            found: {
              duplicates: report.found.duplicates,
              unversioned: report.found.unversioned,
              labels: report.found.labels,
              noOrder: report.found.noOrder,
              index: report.found.index,
              documents: report.found.documents,
            },
            changes: report.changes,
            indexBuilt: report.indexBuilt,
            remaining: {
              duplicates: report.remaining.duplicates,
              unversioned: report.remaining.unversioned,
              labels: report.remaining.labels,
              noOrder: report.remaining.noOrder,
              index: report.index,
            },
          },
          { relaxed: true },
        ),
      );
    } else {
      if (args.fix) {
        out(`${report.changes.length} change(s) applied${report.indexBuilt ? '; unique index built' : ''}. Now:`);
        for (const line of summary(report.remaining, report.index, fields, EJSON)) out(line);
      } else {
        for (const line of summary(report.found, report.index, fields, EJSON)) out(line);
        if (!report.clean) out('run again with --fix to repair (nothing is deleted; every change is printed)');
      }
      out(report.clean ? 'clean' : 'problems remain');
    }
    return report.clean ? 0 : 1;
  } finally {
    await client.close().catch(() => {});
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`atomic-asset-version doctor: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
