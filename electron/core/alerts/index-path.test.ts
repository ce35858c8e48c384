/**
 * Alert rule filters tested on the capture's index (CaptureService.ruleMatcher) give the firings the record's
 * own fields give, while reading a record's bytes only for tests the columns cannot answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realisticCapture } from '../bench/synth.js';
import { decodeRecord, forEachRecord } from '../record.js';
import { CaptureService } from '../service.js';
import type { AlertEvent } from './engine.js';
import { AlertRunner, parseAlertRule } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'icmpcap-alert-index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RULES = [
  // The columns answer these.
  'icmp.type == 3 && icmp.code == 3 rate > 200/s for 200ms; cooldown 100ms',
  'icmpv6.type == 1 count > 15 for 300ms; cooldown 200ms',
  'ip.src == 192.168.1.1 && !(icmp.type == 11) count > 40 for 500ms; cooldown 100ms',
  'icmp.type == 0 && ip.src == 10.0.0.0/14 sources > 20 for 1s; cooldown 300ms',
  // Tests on the quoted datagram and on bytes the columns do not hold.
  // (the quoted echo request's destination: an error's second ip.dst)
  'icmp.type == 3 && ip.dst == 10.0.0.0/10 count > 5 for 1s; cooldown 100ms',
  'icmp.type == 11 && icmp contains 08:00 count > 5 for 1s; cooldown 100ms',
  'icmpv6.type == 2 && frame[0:1] == 60 count > 3 for 400ms; cooldown 100ms',
];

function key(e: AlertEvent): string {
  return `${e.rule} ${e.tsNs} ${e.figures.value} ${e.evidence.join(',')}`;
}

describe('alert rules on the capture index', () => {
  it('fire as the records fields make them fire, reading fields only where the columns cannot answer', () => {
    const service = new CaptureService({ native: new Error('files only'), version: 'test', spoolDir: dir });
    const rules = RULES.map(parseAlertRule);
    const fieldCalls = new Map<string, number>();
    const viaIndex = new AlertRunner(rules, {
      log: () => undefined,
      matcher: (filter, fields) =>
        service.ruleMatcher(filter, (index) => {
          fieldCalls.set(filter, (fieldCalls.get(filter) ?? 0) + 1);
          return fields(index);
        }),
    });
    const viaFields = new AlertRunner(rules, { log: () => undefined });
    let records = 0;
    service.tapRecords((batch, firstNo, ifname, byteOffset, byteLength, firstIndex) => {
      let no = firstNo;
      let index = firstIndex;
      forEachRecord(
        batch,
        (view, offset) => {
          const record = decodeRecord(view, offset);
          const link = ifname(record.ifindex);
          viaIndex.observe(record, no, link, index++);
          viaFields.observe(record, no++, link);
          records++;
        },
        byteOffset,
        byteLength,
      );
    });
    service.startFeed();
    for (const batch of realisticCapture(300_000, 4096, { packetBytes: true })) service.deliver(batch);
    service.settleIngest();
    service.close();

    expect(records).toBe(300_000);
    const want = viaFields.events.map(key);
    // Every rule fired, many times (the comparison is not between two empty lists).
    for (const r of rules)
      expect(viaFields.events.filter((e) => e.rule === r.name).length).toBeGreaterThan(3);
    expect(viaIndex.events.map(key)).toEqual(want);
    // The first five (quoted headers included) never read a record's fields; the last two only for the
    // records they test on bytes.
    for (const r of rules.slice(0, 5)) expect(fieldCalls.get(r.filter) ?? 0).toBe(0);
    for (const r of rules.slice(5)) expect(fieldCalls.get(r.filter) ?? 0).toBeLessThan(records / 10);
  }, 120_000);
});
