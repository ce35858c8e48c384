/**
 * Wireshark's extcap interface to icmpcap (see extcap(4)): Wireshark and tshark list an "icmpcap"
 * interface, show icmpcap's capture options in their dialog (source, interfaces, snap length and the
 * capture filter), and capture through icmpcap's sources (the kernel module's rings, or AF_PACKET through
 * icmpcap-helper), receiving pcapng on the FIFO they name: direction in epb_flags, the sending process
 * in a packet comment when the source knows it.
 *
 *   icmpcap-extcap --extcap-interfaces
 *   icmpcap-extcap --extcap-interface icmpcap --extcap-dlts | --extcap-config
 *   icmpcap-extcap --extcap-interface icmpcap --capture --fifo PATH [--source S] [--interfaces a,b]
 *                  [--snaplen N] [--families ipv4,ipv6] [--types T,...] [--directions in,out]
 *                  [--hosts '[src|dst] ADDR[/LEN],...']
 *
 * `ICMPCAP_HELPER` names the capture helper when it is not next to the addon (tests, custom installs).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { kernelBuffer } from '../kernel-buffer.js';
import { defaultOsName } from '../files/system.js';
import type { SourceKind } from '../../common/contract.js';
import { type Native, type NativeSession, loadNative } from '../native.js';
import { PcapngStream, filterSpec, recordFilter } from './stream.js';

export const EXTCAP_INTERFACE = 'icmpcap';
const LINKTYPE_RAW = 101;

export interface ExtcapIo {
  out(text: string): void;
  err(text: string): void;
  version: string;
  native?: () => Native;
}

const OPTIONS = {
  'extcap-interfaces': { type: 'boolean' },
  'extcap-version': { type: 'string' },
  'extcap-interface': { type: 'string' },
  'extcap-dlts': { type: 'boolean' },
  'extcap-config': { type: 'boolean' },
  'extcap-capture-filter': { type: 'string' },
  'extcap-control-in': { type: 'string' },
  'extcap-control-out': { type: 'string' },
  'extcap-reload-option': { type: 'string' },
  capture: { type: 'boolean' },
  fifo: { type: 'string' },
  debug: { type: 'boolean' },
  'debug-file': { type: 'string' },
  source: { type: 'string' },
  interfaces: { type: 'string' },
  snaplen: { type: 'string' },
  families: { type: 'string' },
  types: { type: 'string' },
  directions: { type: 'string' },
  hosts: { type: 'string' },
} as const;

/** Runs one extcap request; resolves with the exit code (a capture resolves when it stops). */
export async function extcapMain(argv: string[], io: ExtcapIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    io.err(`icmpcap extcap: ${(err as Error).message}\n`);
    return 2;
  }
  const native = io.native ?? loadNative;
  if (values['extcap-interfaces']) {
    io.out(`extcap {version=${io.version}}\n`);
    io.out(
      `interface {value=${EXTCAP_INTERFACE}}{display=icmpcap: ICMP and ICMPv6 (${sourcesText(native)})}\n`,
    );
    return 0;
  }
  const iface = values['extcap-interface'];
  if (iface !== undefined && iface !== EXTCAP_INTERFACE) {
    io.err(`icmpcap extcap: no interface ${iface} (the one interface is ${EXTCAP_INTERFACE})\n`);
    return 2;
  }
  if (values['extcap-dlts']) {
    io.out(`dlt {number=${LINKTYPE_RAW}}{name=RAW}{display=Raw IPv4/IPv6 from the IP header on}\n`);
    return 0;
  }
  if (values['extcap-config']) {
    io.out(configText(native));
    return 0;
  }
  if (!values.capture) {
    io.err('icmpcap extcap: give --extcap-interfaces, --extcap-dlts, --extcap-config or --capture\n');
    return 2;
  }
  if (!values.fifo) {
    io.err('icmpcap extcap: --capture needs --fifo PATH\n');
    return 2;
  }
  if (values['extcap-capture-filter']?.trim()) {
    io.err(
      'icmpcap extcap: BPF capture filters are not used here; set the ICMP filter in the interface options ' +
        '(families, types, directions, hosts) and leave the capture filter empty\n',
    );
    return 2;
  }
  try {
    return await capture(values, native(), io);
  } catch (err) {
    io.err(`icmpcap extcap: ${(err as Error).message}\n`);
    return 1;
  }
}

function sourcesText(native: () => Native): string {
  try {
    const usable = native()
      .probe(helperOption())
      .filter((s) => s.available)
      .map((s) =>
        s.source === 'module'
          ? 'kernel module'
          : `AF_PACKET${s.via === 'helper' ? ' via icmpcap-helper' : ''}`,
      );
    return usable.length ? usable.join(', ') : 'no source available: run icmpcap doctor';
  } catch (err) {
    return `unavailable: ${(err as Error).message}`;
  }
}

function helperOption(): { helperPath?: string } {
  const helper = process.env.ICMPCAP_HELPER;
  return helper ? { helperPath: helper } : {};
}

function configText(native: () => Native): string {
  const lines = [
    'arg {number=0}{call=--source}{display=Capture source}{type=selector}' +
      '{tooltip=Where packets come from: the kernel module rings, or AF_PACKET through icmpcap-helper}',
    'value {arg=0}{value=auto}{display=Best available}{default=true}',
    'value {arg=0}{value=module}{display=Kernel module (icmpcap.ko)}{default=false}',
    'value {arg=0}{value=afpacket}{display=AF_PACKET}{default=false}',
    'arg {number=1}{call=--interfaces}{display=Interfaces}{type=multicheck}' +
      '{tooltip=Capture on these interfaces (none checked: all)}',
  ];
  try {
    for (const i of native().interfaces())
      lines.push(`value {arg=1}{value=${i.name}}{display=${i.name}}{default=false}`);
  } catch {
    // No addon: the dialog still opens; capture will say why it cannot start.
  }
  lines.push(
    'arg {number=2}{call=--snaplen}{display=Snap length}{type=integer}{range=64,65535}{default=256}' +
      '{tooltip=Bytes kept per packet from the IP header on}',
    'arg {number=3}{call=--families}{display=Families}{type=multicheck}{tooltip=None checked: both}{group=Filter}',
    'value {arg=3}{value=ipv4}{display=ICMP (IPv4)}{default=false}',
    'value {arg=3}{value=ipv6}{display=ICMPv6}{default=false}',
    'arg {number=4}{call=--types}{display=ICMP types}{type=string}{group=Filter}' +
      '{tooltip=Names or numbers, comma-separated (e.g. echo-request, echo-reply, unreachable); empty: all}',
    'arg {number=5}{call=--directions}{display=Directions}{type=multicheck}{tooltip=None checked: all}{group=Filter}',
    'value {arg=5}{value=in}{display=In}{default=false}',
    'value {arg=5}{value=out}{display=Out}{default=false}',
    'value {arg=5}{value=forward}{display=Forwarded}{default=false}',
    'arg {number=6}{call=--hosts}{display=Hosts}{type=string}{group=Filter}' +
      '{tooltip=[src|dst] ADDRESS[/PREFIX], comma-separated, any of them (e.g. 192.0.2.7, dst 2001:db8::/32)}',
  );
  return lines.join('\n') + '\n';
}

type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
};

async function capture(values: Values, native: Native, io: ExtcapIo): Promise<number> {
  const snaplen = values.snaplen === undefined ? 256 : Number(values.snaplen);
  if (!Number.isInteger(snaplen) || snaplen < 64 || snaplen > 65535)
    throw new Error(`--snaplen takes 64 to 65535, not ${values.snaplen}`);
  const spec = filterSpec({
    ...(values.families !== undefined ? { families: values.families } : {}),
    ...(values.types !== undefined ? { types: values.types } : {}),
    ...(values.directions !== undefined ? { directions: values.directions } : {}),
    ...(values.hosts !== undefined ? { hosts: values.hosts } : {}),
  });
  const interfaces = (values.interfaces ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const wanted = values.source ?? 'auto';
  if (wanted !== 'auto' && wanted !== 'module' && wanted !== 'afpacket')
    throw new Error(`--source takes auto, module or afpacket, not ${wanted}`);
  let source: SourceKind;
  const helper = helperOption();
  if (wanted !== 'auto') source = wanted;
  else {
    const sources = native.probe(helper);
    const usable = sources.find((s) => s.available);
    if (!usable)
      throw new Error(
        `no capture source is available: ${sources.map((s) => `${s.source}: ${s.reason ?? 'unavailable'}${s.fix ? ` (fix: ${s.fix})` : ''}`).join('; ')}`,
      );
    source = usable.source;
  }
  const names = new Map<number, string>();
  const ifname = (index: number): string => {
    if (!names.has(index)) for (const i of native.interfaces()) names.set(i.index, i.name);
    return names.get(index) ?? `if${index}`;
  };
  // Opening a FIFO for writing waits for its reader (dumpcap), which is already there.
  const fd = openSync(values.fifo!, 'w');
  let session: NativeSession | null = null;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const stop = (code: number): void => {
    if (session) {
      const s = session;
      session = null;
      try {
        s.stop();
      } finally {
        s.close();
      }
    }
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    finish(code);
  };
  const stream = new PcapngStream(
    (bytes) => {
      try {
        writeSync(fd, bytes);
      } catch (err) {
        // The reader went away (Wireshark stopped): that ends the capture, not an error.
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') queueMicrotask(() => stop(0));
        else throw err;
      }
    },
    {
      application: `icmpcap ${io.version}`,
      os: defaultOsName(),
      snaplen,
      ifname,
      filter: recordFilter(spec),
    },
  );
  stream.start();
  try {
    const filter = Object.keys(spec).length ? { filter: spec } : {};
    session = native.open({ source, interfaces, snaplen, ...kernelBuffer(source), ...filter, ...helper });
    session.start(
      (batch) => {
        if (session) stream.append(batch);
      },
      (ev) => {
        if (ev.type === 'error' || ev.type === 'interface-gone') {
          io.err(`icmpcap extcap: ${ev.message}\n`);
          queueMicrotask(() => stop(1));
        } else if (ev.type === 'stopped') queueMicrotask(() => stop(0));
      },
    );
  } catch (err) {
    stop(1);
    throw err;
  }
  const onSignal = (): void => stop(0);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const code = await done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return code;
}
