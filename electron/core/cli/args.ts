/**
 * Parsing of `icmpcap capture`'s flags, spelled as tshark and tcpdump spell them. Everything wrong on the
 * command line is a UsageError (exit 2) that names the flag and says what it takes.
 */
import { parseArgs } from 'node:util';
import { ALERT_FLAGS, type AlertFlagValues, alertRulesFromFlags } from '../alerts/cli.js';
import { EXPORT_FORMATS, type ExportFormat, type RingLimit, RingLimitSchema } from '../../common/contract.js';
import { usage, UsageError } from './errors.js';
import type { Rotation } from './output.js';

export type OutputKind = 'text' | 'fields' | 'json' | 'ndjson';

/** `-E` options of `-T fields`, with tshark's defaults. */
export interface FieldOptions {
  header: boolean;
  separator: string;
  quote: '' | '"' | "'";
  occurrence: 'f' | 'l' | 'a';
  aggregator: string;
}

export interface CaptureOptions {
  /** --alert and friends (electron/core/alerts/cli.ts), checked here. */
  alerts: AlertFlagValues;
  interfaces: string[];
  read?: string;
  write?: string;
  format?: ExportFormat;
  count?: number;
  autostop: { duration?: number; packets?: number; filesize?: number; files?: number };
  rotation?: Rotation;
  displayFilter?: string;
  captureFilter?: string;
  snaplen: number;
  quiet: boolean;
  lineBuffered: boolean;
  resolve: boolean;
  listInterfaces: boolean;
  /** Print packets to standard output even while writing a file (tshark -P). */
  print: boolean;
  outputKind: OutputKind;
  fields: string[];
  fieldOptions: FieldOptions;
  statistics: string[];
  source: 'auto' | 'module' | 'afpacket';
  /** -B: the kernel buffer in MiB, all rings together (kernel-buffer.ts); default: chosen for the source. */
  bufferMiB?: number;
  /** -Z: started as root, the account to run as. */
  user?: string;
  limit?: RingLimit;
  help: boolean;
}

/** Rewrites node's parseArgs messages into ours: the flag, and where to read about it. */
function parseError(err: unknown): never {
  const e = err as Error & { code?: string };
  const unknown = /Unknown option '([^']+)'/.exec(e.message);
  if (unknown) usage(`unknown flag ${unknown[1]}; \`icmpcap help capture\` lists the flags`);
  const missing = /Option '([^']+)/.exec(e.message);
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && missing)
    usage(
      `${missing[1]!.replace(/ <value>$/, '').replace(/^(-\w), --.*/, '$1')} needs a value; \`icmpcap help capture\` says which`,
    );
  usage(e.message);
}

export function positiveNumber(flag: string, text: string, integer = false): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    usage(`${flag} takes a positive ${integer ? 'whole number' : 'number'}, not ${JSON.stringify(text)}`);
  return n;
}

/** `-a` conditions: tshark's `duration:N`, `packets:N`, `filesize:KB`, `files:N`, and a bare number of seconds. */
function parseAutostop(list: string[]): CaptureOptions['autostop'] {
  const out: CaptureOptions['autostop'] = {};
  for (const item of list) {
    if (/^[\d.]+$/.test(item)) {
      out.duration = positiveNumber('-a', item);
      continue;
    }
    const m = /^(duration|packets|filesize|files):(.*)$/.exec(item);
    if (!m)
      usage(`-a takes duration:SECONDS, packets:N, filesize:KB or files:N, not ${JSON.stringify(item)}`);
    const key = m[1] as keyof CaptureOptions['autostop'];
    out[key] = positiveNumber(`-a ${key}`, m[2]!, key !== 'duration');
  }
  return out;
}

/** `-b` conditions, with dumpcap's meanings. */
function parseRotation(list: string[]): Rotation | undefined {
  if (list.length === 0) return undefined;
  const out: Rotation = {};
  for (const item of list) {
    const m = /^(duration|filesize|interval|packets|files):(.*)$/.exec(item);
    if (!m)
      usage(
        `-b takes duration:SECONDS, filesize:KB, interval:SECONDS, packets:N or files:N, not ${JSON.stringify(item)}`,
      );
    const key = m[1] as keyof Rotation;
    out[key] = positiveNumber(`-b ${key}`, m[2]!, key !== 'duration' && key !== 'interval');
  }
  if (
    out.duration === undefined &&
    out.filesize === undefined &&
    out.interval === undefined &&
    out.packets === undefined
  ) {
    usage(
      `-b ${list.join(' -b ')} says how many files to keep but not when to switch: ` +
        'add -b duration:N, filesize:KB, interval:N or packets:N',
    );
  }
  return out;
}

/** `-E` options of `-T fields`, as tshark takes them. */
export function parseFieldOptions(list: string[]): FieldOptions {
  const out: FieldOptions = { header: false, separator: '\t', quote: '', occurrence: 'a', aggregator: ',' };
  for (const item of list) {
    const m = /^(header|separator|quote|occurrence|aggregator)=(.*)$/s.exec(item);
    if (!m)
      usage(
        `-E takes header=y|n, separator=/t|/s|C, quote=d|s|n, occurrence=f|l|a or aggregator=,|/s|C, not ${JSON.stringify(item)}`,
      );
    const value = m[2]!;
    switch (m[1]) {
      case 'header':
        if (!/^[yn]$/.test(value)) usage(`-E header takes y or n, not ${JSON.stringify(value)}`);
        out.header = value === 'y';
        break;
      case 'separator':
      case 'aggregator': {
        const text = value === '/t' ? '\t' : value === '/s' ? ' ' : value;
        if (text.length !== 1)
          usage(`-E ${m[1]} takes /t, /s or one character, not ${JSON.stringify(value)}`);
        if (m[1] === 'separator') out.separator = text;
        else out.aggregator = text;
        break;
      }
      case 'quote':
        if (!/^[dsn]$/.test(value)) usage(`-E quote takes d, s or n, not ${JSON.stringify(value)}`);
        out.quote = value === 'd' ? '"' : value === 's' ? "'" : '';
        break;
      case 'occurrence':
        if (!/^[fla]$/.test(value)) usage(`-E occurrence takes f, l or a, not ${JSON.stringify(value)}`);
        out.occurrence = value as FieldOptions['occurrence'];
        break;
    }
  }
  return out;
}

/** --ring-records / --ring-seconds, checked as capture.start checks them. */
export function ringLimit(records: string | undefined, seconds: string | undefined): RingLimit | undefined {
  if (records === undefined && seconds === undefined) return undefined;
  const limit: RingLimit = {};
  if (records !== undefined) limit.records = Number(records);
  if (seconds !== undefined) limit.seconds = Number(seconds);
  const parsed = RingLimitSchema.safeParse(limit);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = issue.path[0] === 'seconds' ? '--ring-seconds' : '--ring-records';
    const given = issue.path[0] === 'seconds' ? seconds : records;
    usage(
      `${flag} ${given}: ${issue.message} (${flag === '--ring-seconds' ? 'at least 10 seconds' : 'a whole number, at least 131072'})`,
    );
  }
  return parsed.data;
}

/**
 * -B / --buffer-size: MiB, as tshark's and dumpcap's -B (tcpdump's counts KiB). What each source takes on this
 * machine is checked when the capture starts (kernel-buffer.ts), with the range in the message.
 */
export function bufferSizeOf(flag: string, text: string): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1)
    usage(
      `${flag} takes the kernel buffer in MiB, a whole number from 1 (as tshark's -B), not ${JSON.stringify(text)}`,
    );
  if (!Number.isSafeInteger(n * 2 ** 20))
    usage(`${flag} ${text.trim()}: more than any kernel buffer (it counts MiB: -B 64 is 64 MiB)`);
  return n;
}

export function parseSource(text: string): CaptureOptions['source'] {
  if (text !== 'auto' && text !== 'module' && text !== 'afpacket')
    usage(`--source takes auto, module or afpacket, not ${text}`);
  return text;
}

export function formatFromPath(path: string): ExportFormat | undefined {
  const ext = /\.([a-z]+)$/i.exec(path)?.[1]?.toLowerCase();
  if (ext === 'pcapng' || ext === 'ntar') return 'pcapng';
  if (ext === 'pcap' || ext === 'cap') return 'pcap';
  if (ext === 'csv') return 'csv';
  if (ext === 'ndjson' || ext === 'jsonl') return 'ndjson';
  return undefined;
}

export function parseCaptureArgs(argv: string[]): CaptureOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        interface: { type: 'string', short: 'i', multiple: true },
        read: { type: 'string', short: 'r' },
        write: { type: 'string', short: 'w' },
        format: { type: 'string', short: 'F' },
        count: { type: 'string', short: 'c' },
        autostop: { type: 'string', short: 'a', multiple: true },
        duration: { type: 'string', multiple: true },
        'ring-buffer': { type: 'string', short: 'b', multiple: true },
        'display-filter': { type: 'string', short: 'Y' },
        filter: { type: 'string' },
        'capture-filter': { type: 'string', short: 'f' },
        'snapshot-length': { type: 'string', short: 's' },
        quiet: { type: 'boolean', short: 'q', default: false },
        'line-buffered': { type: 'boolean', short: 'l', default: false },
        'no-resolve': { type: 'boolean', short: 'n', default: false },
        resolve: { type: 'boolean', short: 'N', default: false },
        'list-interfaces': { type: 'boolean', short: 'D', default: false },
        print: { type: 'boolean', short: 'P', default: false },
        'output-format': { type: 'string', short: 'T' },
        field: { type: 'string', short: 'e', multiple: true },
        'field-option': { type: 'string', short: 'E', multiple: true },
        statistics: { type: 'string', short: 'z', multiple: true },
        source: { type: 'string', default: 'auto' },
        'buffer-size': { type: 'string', short: 'B' },
        user: { type: 'string', short: 'Z' },
        'ring-records': { type: 'string' },
        'ring-seconds': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        ...ALERT_FLAGS,
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    parseError(err);
  }
  const v = parsed.values;
  const format = v.format;
  if (format !== undefined && !(EXPORT_FORMATS as readonly string[]).includes(format))
    usage(`-F takes ${EXPORT_FORMATS.join(', ')}, not ${format}`);
  const outputKind = v['output-format'] ?? (v.field?.length ? 'fields' : 'text');
  if (!['text', 'fields', 'json', 'ndjson'].includes(outputKind))
    usage(`-T takes text, fields, json or ndjson, not ${outputKind}`);
  if (outputKind === 'fields' && !v.field?.length)
    usage('-T fields needs at least one -e FIELD (e.g. -e icmp.type -e ip.src)');
  // tshark and tcpdump take the capture filter as the words after the flags too.
  const words = parsed.positionals.join(' ').trim();
  if (words && v['capture-filter'] !== undefined)
    usage(`give the capture filter once: with -f, or as the words at the end (${words}), not both`);
  const captureFilter = v['capture-filter'] ?? (words || undefined);
  const interfaces = (v.interface ?? []).filter((name) => name !== 'any');
  const snaplen = v['snapshot-length'] === undefined ? 65535 : snaplenOf(v['snapshot-length'] ?? '65535');
  const autostop = parseAutostop([...(v.duration ?? []), ...(v.autostop ?? [])]);
  const rotation = parseRotation(v['ring-buffer'] ?? []);
  const write = v.write;
  if (rotation && (write === undefined || write === '-'))
    usage('-b needs -w FILE (a file name, not -): the files are named after it');
  if (v.read !== undefined && v.interface?.length)
    usage(`-r reads a file and -i captures live: give one of them, not both`);
  const bufferMiB = v['buffer-size'] === undefined ? undefined : bufferSizeOf('-B', v['buffer-size']);
  // tshark ignores -B with -r; a buffer that cannot apply is more likely a mistaken command line.
  if (v.read !== undefined && bufferMiB !== undefined)
    usage('-B sizes the kernel buffer of a live capture and -r reads a file: drop -B');
  const count = v.count === undefined ? undefined : positiveNumber('-c', v.count, true);
  const alerts: AlertFlagValues = {
    ...(v.alert ? { alert: v.alert } : {}),
    'alert-commands': v['alert-commands'],
    ...(v['alert-dir'] !== undefined ? { 'alert-dir': v['alert-dir'] } : {}),
    'no-alert-file': v['no-alert-file'],
  };
  try {
    alertRulesFromFlags(alerts);
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
  return {
    alerts,
    interfaces,
    ...(v.read !== undefined ? { read: v.read } : {}),
    ...(write !== undefined ? { write } : {}),
    ...(format !== undefined ? { format: format as ExportFormat } : {}),
    ...(count !== undefined || autostop.packets !== undefined
      ? { count: Math.min(count ?? Infinity, autostop.packets ?? Infinity) }
      : {}),
    autostop,
    ...(rotation ? { rotation } : {}),
    ...(v['display-filter'] !== undefined || v.filter !== undefined
      ? { displayFilter: v['display-filter'] ?? v.filter }
      : {}),
    ...(captureFilter !== undefined ? { captureFilter } : {}),
    snaplen,
    quiet: v.quiet,
    lineBuffered: v['line-buffered'],
    resolve: v.resolve && !v['no-resolve'],
    listInterfaces: v['list-interfaces'],
    print: v.print,
    outputKind: outputKind as OutputKind,
    fields: v.field ?? [],
    fieldOptions: parseFieldOptions(v['field-option'] ?? []),
    statistics: v.statistics ?? [],
    source: parseSource(v.source),
    ...(bufferMiB !== undefined ? { bufferMiB } : {}),
    ...(v.user !== undefined ? { user: v.user } : {}),
    ...(() => {
      const limit = ringLimit(v['ring-records'], v['ring-seconds']);
      return limit ? { limit } : {};
    })(),
    help: v.help,
  };
}

/** -s: tshark's 0 means the largest; our records carry 64 to 65535 bytes. */
function snaplenOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    usage(`-s takes a number of bytes (0 for all), not ${JSON.stringify(text)}`);
  if (n === 0) return 65535;
  if (n < 64 || n > 65535) usage(`-s takes 64 to 65535 bytes (or 0 for all), not ${n}`);
  return n;
}
