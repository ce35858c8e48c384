import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../common/contract.js';
import { everyKind, writePcap } from '../fields/testing/corpus.js';
import { loadNative } from '../native.js';
import { CaptureService } from '../service.js';

const hasTshark = spawnSync('tshark', ['-v']).status === 0;

/**
 * The capture service's filter bar: a file opened in the service filters as tshark -Y filters it,
 * including fields only the bytes hold (read back from the spool): quoted headers of ICMP errors,
 * the RFC 4884 length, ND options, udp ports of a traceroute probe.
 */
describe.skipIf(!hasTshark)('the service filters opened files as tshark does', () => {
  let tmp: string;
  let service: CaptureService;
  let file: string;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'icmpcap-svc-filter-'));
    file = join(tmp, 'every.pcap');
    // The file reader keeps only packets with an ICMP header (no non-first fragments).
    writePcap(
      file,
      everyKind(5).filter((p) => !(p.data[0] === 0x45 && (((p.data[6]! << 8) | p.data[7]!) & 0x1fff) !== 0)),
    );
    service = new CaptureService({ native: loadNative(), version: 'test', spoolDir: join(tmp, 'spool') });
    const open = (await service.handle('file.open', { path: file }, 'ipc')) as { id: number };
    const job = await new Promise<Job>((resolve) => {
      const off = service.on((event, data) => {
        if (event === 'job' && (data as Job).id === open.id && (data as Job).state !== 'running') {
          off();
          resolve(data as Job);
        }
      });
    });
    expect(job.state).toBe('done');
  });

  afterAll(() => {
    service.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  function tshark(filter: string): number[] {
    const run = spawnSync(
      'tshark',
      [
        '-n',
        '-r',
        file,
        '-o',
        'ip.defragment:FALSE',
        '-o',
        'ipv6.defragment:FALSE',
        '-Y',
        filter,
        '-T',
        'fields',
        '-e',
        'frame.number',
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(run.status, run.stderr).toBe(0);
    return run.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  }

  for (const filter of [
    'ip.dst == 198.51.100.7',
    'ip.src#2 == 10.0.0.2 && udp.dstport == 33434',
    'icmp.type == 8',
    'icmp.type == 3',
    'icmp.length == 32',
    'icmpv6.opt.prefix == 2001:db8:5::',
    'ipv6.dst == 2001:db8:9::/48',
    'udp.port in {33434..33440}',
    'icmp.ident == 0x1234 && icmp.type == 8',
  ]) {
    it(filter, async () => {
      await service.handle('view.setFilter', { filter }, 'ipc');
      const got = service.rows(0, 1000).rows.map((r) => r.no);
      expect(got.length).toBeGreaterThan(0);
      expect(got).toEqual(tshark(filter));
    });
  }
});
