import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIELDS } from '../../common/fields.js';
import {
  FieldSession,
  annotateResponses,
  extractFields,
  formatFieldValues,
  resolveFieldNames,
} from './extract.js';
import { everyKind, recordOf, writePcap } from './testing/corpus.js';

const hasTshark = spawnSync('tshark', ['-v']).status === 0;

/** Fields tshark knows (ours are namespaced icmpcap.*; interface names come from the file). */
const NAMES = FIELDS.filter((f) => f.own !== true && !f.name.startsWith('frame.interface')).map(
  (f) => f.name,
);

describe.skipIf(!hasTshark)('every registry field reads as tshark -T fields prints it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icmpcap-fields-'));
  const file = path.join(dir, 'every.pcap');
  const packets = everyKind();
  writePcap(file, packets);
  const records = packets.map((p) => recordOf(p));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function tshark(twoPass: boolean): string[][] {
    const args = [
      ...(twoPass ? ['-2'] : []),
      '-n',
      '-r',
      file,
      '-o',
      'ip.defragment:FALSE',
      '-o',
      'ipv6.defragment:FALSE',
    ];
    args.push('-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,');
    for (const n of NAMES) args.push('-e', n);
    const run = spawnSync('tshark', args, { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split('|'));
  }

  function ours(twoPass: boolean): string[][] {
    const session = new FieldSession();
    const contexts = records.map((r) => session.context(r, 'if0'));
    if (twoPass) annotateResponses(contexts);
    return records.map((r, i) => {
      const fields = extractFields(r, contexts[i]!);
      return NAMES.map((n) => formatFieldValues(n, fields.get(n)));
    });
  }

  for (const twoPass of [false, true]) {
    it(`${NAMES.length} fields x ${packets.length} packets (${twoPass ? 'two passes, -2' : 'one pass'})`, () => {
      const want = tshark(twoPass);
      const got = ours(twoPass);
      expect(got.length).toBe(want.length);
      const diffs: string[] = [];
      got.forEach((row, i) =>
        row.forEach((v, j) => {
          if (v !== (want[i]![j] ?? ''))
            diffs.push(`frame ${i + 1} ${NAMES[j]}: ours ${v} tshark ${want[i]![j]}`);
        }),
      );
      expect(diffs.slice(0, 20)).toEqual([]);
    });
  }

  it('quoted headers are a second layer: ip.dst of a time exceeded is the router path and the probe target', () => {
    const te = records.findIndex((r) => r.family === 4 && r.type === 11);
    const fields = extractFields(records[te]!, null);
    expect(fields.get('ip.dst').length).toBe(2);
    expect(fields.occurrences('ip.dst').map((o) => o.layer)).toEqual([1, 2]);
    expect(fields.get('udp.dstport')).toEqual([33434]);
  });

  it('unknown -e names fail with advice', () => {
    expect(() => resolveFieldNames(['icmp.type', 'icmp.bogus'])).toThrow(/unknown field 'icmp.bogus'/);
  });
});
