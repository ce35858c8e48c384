/**
 * `icmpcap capture`: capture live (or read a file with -r) through the capture service, keep what -Y keeps,
 * and hand each packet as it arrives to the outputs: the file of -w (written as dumpcap writes, switched by
 * -b), and lines, fields or JSON on standard output. Signals and a closed output pipe end it cleanly.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { CaptureFilterSpec } from '../../common/capture-filter.js';
import { type CaptureState, type Job, type Row, ServiceError } from '../../common/contract.js';
import type { ExportRow } from '../files/index.js';
import { ndjsonLine } from '../files/text-write.js';
import { checkFilter } from '../filter/index.js';
import { bufferFullAdvice } from '../advice.js';
import { planBuffer, sizeText } from '../kernel-buffer.js';
import { type CaptureService, errorMessage } from '../service.js';
import { type CaptureOptions, formatFromPath, parseCaptureArgs } from './args.js';
import { attachAlerts } from '../alerts/cli.js';
import { OutputClosed, usage } from './errors.js';
import { NameCache, rowLine } from './lines.js';
import {
  FieldReader,
  checkFields,
  checkStatistics,
  createStatistics,
  fieldsJson,
  fieldsLine,
} from './analysis.js';
import type { FieldMap } from '../fields/extract.js';
import { CaptureOutput, writeAllSync } from './output.js';
import { CaptureFilterError, compileCaptureFilter, specAsDisplayFilter } from './pcap-filter.js';
import { dropRoot, makeService, version } from './service.js';
import { commandHelp } from './usage.js';

const POLL_MS = 50;
const MIB = 2 ** 20;
/** Rows taken from the view at a time. */
const BATCH_ROWS = 1000;

/** Where packet text goes: an fd written synchronously, so nothing waits in memory when the process ends. */
class TextOut {
  private pending = '';

  constructor(
    private readonly fd: number,
    private readonly lineBuffered: boolean,
  ) {}

  line(text: string): void {
    if (this.lineBuffered) writeAllSync(this.fd, Buffer.from(text + '\n'));
    else this.pending += text + '\n';
  }

  flush(): void {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    writeAllSync(this.fd, Buffer.from(text));
  }
}

/** Formats the packets for standard output in the form -T asks for. */
interface PacketPrinter {
  /** Whether it needs the records' bytes (everything but the text line). */
  readonly needsRecords: boolean;
  start(out: TextOut): void;
  packet(row: Row, record: ExportRow | undefined, out: TextOut, fields?: FieldMap): void;
  end(out: TextOut): void;
}

function createPrinter(opts: CaptureOptions, names: NameCache | null): PacketPrinter {
  const withFields = opts.fields.length > 0;
  switch (opts.outputKind) {
    case 'ndjson':
      return {
        needsRecords: true,
        start: () => undefined,
        packet: (_row, record, out, fields) => {
          if (withFields && fields) out.line(JSON.stringify(layersOf(fields, opts.fields)));
          else if (record) out.line(ndjsonLine({ relativeNs: 0n, ...record }).trimEnd());
        },
        end: () => undefined,
      };
    case 'json': {
      let first = true;
      const index = `packets-${new Date().toISOString().slice(0, 10)}`;
      return {
        needsRecords: true,
        start: (out) => out.line('['),
        packet: (_row, record, out, fields) => {
          const text =
            withFields && fields
              ? fieldsJson(fields, opts.fields, index)
              : record
                ? ndjsonLine({ relativeNs: 0n, ...record }).trimEnd()
                : null;
          if (text === null) return;
          out.line(`${first ? '' : ','}${text}`);
          first = false;
        },
        end: (out) => out.line(']'),
      };
    }
    case 'fields':
      return {
        needsRecords: true,
        start: (out) => {
          if (opts.fieldOptions.header) out.line(opts.fields.join(opts.fieldOptions.separator));
        },
        packet: (_row, _record, out, fields) => {
          if (fields) out.line(fieldsLine(fields, opts.fields, opts.fieldOptions));
        },
        end: () => undefined,
      };
    case 'text':
      return {
        needsRecords: false,
        start: () => undefined,
        packet: (row, _record, out) => out.line(rowLine(row, names?.name)),
        end: () => undefined,
      };
  }
}

function layersOf(fields: FieldMap, names: readonly string[]): Record<string, string[]> {
  return (JSON.parse(fieldsJson(fields, names, '')) as { _source: { layers: Record<string, string[]> } })
    ._source.layers;
}

export async function capture(argv: string[]): Promise<void> {
  const opts = parseCaptureArgs(argv);
  if (opts.help) {
    process.stdout.write(commandHelp('capture'));
    return;
  }
  if (opts.listInterfaces) {
    const { interfaces } = await import('./interfaces.js');
    interfaces('tshark');
    return;
  }
  let captureFilter: CaptureFilterSpec | undefined;
  let displayFilter = opts.displayFilter;
  if (opts.captureFilter !== undefined) {
    try {
      captureFilter = compileCaptureFilter(opts.captureFilter);
    } catch (err) {
      if (!(err instanceof CaptureFilterError)) throw err;
      usage(`-f ${JSON.stringify(opts.captureFilter)}: ${err.message}`);
    }
    // User space keeps what the kernel should have kept: files (-r) have no kernel, and an addon without
    // kernel filters passes everything.
    const asDisplay = specAsDisplayFilter(captureFilter);
    displayFilter = displayFilter ? `(${displayFilter}) && ${asDisplay}` : asDisplay;
  }
  if (displayFilter) {
    try {
      checkFilter(displayFilter);
    } catch (err) {
      const position = (err as { position?: number }).position;
      const pointer = position === undefined ? '' : `\n  ${displayFilter}\n  ${' '.repeat(position)}^`;
      usage(`-Y: bad filter: ${errorMessage(err)}${pointer}`);
    }
  }
  checkStatistics(opts.statistics);
  if (opts.fields.length) checkFields(opts.fields);
  if (opts.fields.length && opts.outputKind === 'text')
    usage('-e prints fields with -T fields (or -T json / ndjson), not with -T text');
  let format = opts.format;
  if (opts.write !== undefined && opts.write !== '-' && !format) {
    format = formatFromPath(opts.write);
    if (!format)
      usage(`cannot tell the format of ${opts.write} from its name: add -F pcapng|pcap|csv|ndjson`);
  }
  format ??= 'pcapng';

  let stdinCopy: string | null = null;
  let file: CaptureOutput | null = null;
  if (opts.write !== undefined) {
    // The file first, by whoever started icmpcap: a path that cannot be written fails before anything is
    // captured, and `sudo icmpcap capture -w /root/x.pcapng` works as it does with dumpcap. Nothing is written
    // to it (a file that was there keeps its contents) until the capture has started (file.begin in run).
    file = CaptureOutput.open({
      format,
      path: opts.write,
      ...(opts.rotation ? { rotation: opts.rotation } : {}),
      ...(opts.autostop.files !== undefined ? { stopAfterFiles: opts.autostop.files } : {}),
      application: `icmpcap ${version()}`,
      snaplen: opts.snaplen,
    });
  }
  try {
    // The input too: standard input and pipes are copied to a private file for the reader (it wants a file it
    // can size and seek), and so is a file root opened, for the account that reads it after the drop.
    let inputFd: number | null = null;
    if (opts.read === '-') inputFd = 0;
    else if (opts.read !== undefined && (process.geteuid?.() === 0 || !isRegularFile(resolve(opts.read)))) {
      try {
        inputFd = openSync(resolve(opts.read), 'r');
      } catch (err) {
        throw new Error(`Cannot open the capture file ${opts.read}: ${errorMessage(err)}`, { cause: err });
      }
    }
    // Nothing that parses packets runs as root (files written after a -b switch belong to that user).
    dropRoot(opts.user);
    const service = makeService();
    const alerts = attachAlerts(service, opts.alerts);
    try {
      if (displayFilter) await service.handle('view.setFilter', { filter: displayFilter }, 'ipc');
      let readPath = opts.read === undefined ? undefined : resolve(opts.read);
      if (inputFd !== null) {
        stdinCopy = mkdtempSync(join(tmpdir(), 'icmpcap-read-'));
        readPath = join(stdinCopy, 'input');
        copyStream(inputFd, readPath);
      }
      await run(service, opts, file, readPath, captureFilter);
      await alerts?.flush();
    } finally {
      service.close();
      if (stdinCopy) rmSync(stdinCopy, { recursive: true, force: true });
    }
  } catch (err) {
    // The capture never started (it begins the file when it does): no file of ours is left behind, and a file
    // that was there is as it was, as with dumpcap, which opens its file only once capturing.
    const note = file?.discard();
    if (note) process.stderr.write(`icmpcap: ${note}\n`);
    throw err;
  }
}

/** Starts the live capture; a -B the source cannot take here is a mistake on the command line. */
function startLive(
  service: CaptureService,
  opts: CaptureOptions,
  captureFilter: CaptureFilterSpec | undefined,
): CaptureState {
  try {
    return service.start({
      source: opts.source,
      interfaces: opts.interfaces,
      snaplen: opts.snaplen,
      ...(opts.limit ? { limit: opts.limit } : {}),
      ...(captureFilter ? { filter: captureFilter } : {}),
      ...(opts.bufferMiB !== undefined ? { bufferBytes: opts.bufferMiB * MIB } : {}),
    });
  } catch (err) {
    // The only request capture.start refuses after the command line's own checks: the buffer's size.
    if (err instanceof ServiceError && err.code === 'bad-request' && opts.bufferMiB !== undefined)
      usage(`-B ${opts.bufferMiB}: ${err.message}`);
    throw err;
  }
}

/** With -B: how the buffer was laid out, as the source got it (its rings are powers of two, rounded down). */
function bufferText(opts: CaptureOptions, state: CaptureState): string {
  if (opts.bufferMiB === undefined || (state.source !== 'module' && state.source !== 'afpacket')) return '';
  const plan = planBuffer(state.source, {
    bytes: opts.bufferMiB * MIB,
    interfaces: opts.interfaces,
    snaplen: opts.snaplen,
  });
  const kind = state.source === 'module' ? 'per-CPU ring' : 'packet ring';
  return `, a ${opts.bufferMiB} MiB buffer (${plan.rings} ${kind}${plan.rings === 1 ? '' : 's'} of ${sizeText(plan.ringBytes)})`;
}

/** Copies a pipe (standard input, a FIFO) to a file until its writer closes it. */
function copyStream(fd: number, to: string): void {
  const out = openSync(to, 'w', 0o600);
  const buf = Buffer.allocUnsafe(1 << 20);
  const wait = new Int32Array(new SharedArrayBuffer(4));
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(wait, 0, 0, 10);
        continue;
      }
      if (n === 0) break;
      writeAllSync(out, buf.subarray(0, n));
    }
  } finally {
    closeSync(out);
    if (fd !== 0) closeSync(fd);
  }
}

function inputName(read: string): string {
  return read === '-' ? 'standard input' : read;
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return true; // let the reader say what is wrong with it
  }
}

async function run(
  service: CaptureService,
  opts: CaptureOptions,
  file: CaptureOutput | null,
  readPath: string | undefined,
  captureFilter: CaptureFilterSpec | undefined,
): Promise<void> {
  const names = opts.resolve ? new NameCache() : null;
  const printer = createPrinter(opts, names);
  const printing = opts.print || (!file && !opts.quiet);
  // With -w - the packets own standard output: -P prints to standard error, as tshark does.
  const text = printing ? new TextOut(file?.toStdout ? 2 : 1, opts.lineBuffered) : null;
  // A running count on a terminal only, as tshark and dumpcap: logs and pipes get the summary at the end.
  const progress = (line: string): void => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
  };

  const statistics = createStatistics(
    opts.statistics,
    (filter) => {
      try {
        return service.recordMatcher(filter);
      } catch (err) {
        return usage(`-z: bad filter "${filter}": ${errorMessage(err)}`);
      }
    },
    readPath === undefined,
  );
  const fieldReader = opts.fields.length && text ? new FieldReader() : null;
  /** Fields and statistics see every record in order, kept by -Y or not: the next one to see. */
  let seen = 0;

  let job: Job | null = null;
  const offJobs = service.on((event, data) => {
    if (event === 'job' && (data as Job).state !== 'running') job = data as Job;
  });
  let openJob: number | null = null;
  if (readPath !== undefined) {
    openJob = ((await service.handle('file.open', { path: readPath }, 'ipc')) as { id: number }).id;
    file?.begin();
  } else {
    const state = startLive(service, opts, captureFilter);
    file?.begin();
    process.stderr.write(
      `icmpcap: capturing on ${state.interfaces.length ? state.interfaces.join(', ') : 'all interfaces'} with ${state.source}${bufferText(opts, state)}\n`,
    );
  }

  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(0); // a second signal: the file is whole after every write already
    interrupted = true;
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);

  const count = opts.count ?? Infinity;
  let consumed = 0;
  /** View position of the next row, and the number of the last one taken (ring buffer: positions shift). */
  let next = 0;
  let lastNo = 0;
  let evicted = 0;
  let closed = false;
  const started = Date.now();
  let lastProgress = started;
  if (text) printer.start(text);

  const consume = async (): Promise<void> => {
    const counts = service.counts();
    if ((counts.evicted ?? 0) !== evicted) {
      // The ring buffer dropped records: find where the last one taken is now (gone: start over at 0).
      evicted = counts.evicted ?? 0;
      const at = lastNo
        ? ((await service.handle('view.positionOf', { no: lastNo }, 'ipc')) as { position: number | null })
            .position
        : null;
      next = at === null ? 0 : at + 1;
    }
    while (next < counts.view && consumed < count && !file?.finished) {
      const want = Math.min(BATCH_ROWS, counts.view - next, count - consumed);
      const { rows } = service.rows(next, want);
      if (rows.length === 0) break;
      const needRecords = file !== null || (text !== null && printer.needsRecords);
      const records = needRecords ? [...service.recordRows(rows.map((r) => r.no - 1))] : [];
      const byNo = new Map(records.map((r) => [r.no, r]));
      const fieldsByNo = new Map<number, FieldMap>();
      if (fieldReader || statistics) {
        // Every record up to the last row taken (or all so far, when these were the last kept ones).
        const until =
          rows.length < want || next + rows.length >= counts.view ? service.store.length : rows.at(-1)!.no;
        see(until, byNo, fieldsByNo);
      }
      file?.write(records);
      if (text) {
        if (names) await names.prime(rows.flatMap((r) => [r.src, r.dst]));
        for (const row of rows) printer.packet(row, byNo.get(row.no), text, fieldsByNo.get(row.no));
        text.flush();
      }
      consumed += rows.length;
      next += rows.length;
      lastNo = rows[rows.length - 1]!.no;
    }
    // Statistics count what -Y left out too, after the last kept row.
    if (statistics && consumed < count) see(service.store.length, new Map(), new Map());
  };

  /** Feeds records seen..until-1 to the field session and the statistics; fields of kept ones into `out`. */
  const see = (until: number, kept: Map<number, ExportRow>, out: Map<number, FieldMap>): void => {
    seen = Math.max(seen, service.store.firstIndex);
    if (until <= seen) return;
    const indices = Array.from({ length: until - seen }, (_, k) => seen + k);
    for (const row of service.recordRows(indices)) {
      statistics?.add(row.no - 1, row);
      if (!fieldReader) continue;
      if (kept.has(row.no)) out.set(row.no, fieldReader.read(row));
      else fieldReader.skip(row);
    }
    seen = until;
  };

  const take = async (): Promise<void> => {
    try {
      await consume();
    } catch (err) {
      if (!(err instanceof OutputClosed)) throw err;
      closed = true;
    }
  };

  for (;;) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    await take();
    const now = Date.now();
    file?.tick(now);
    const state = service.captureState.state;
    const ended = readPath !== undefined ? job !== null : state === 'stopped' || state === 'error';
    if (file && !opts.quiet && now - lastProgress >= 1000 && readPath === undefined) {
      lastProgress = now;
      const c = service.counts();
      progress(
        `icmpcap: ${consumed.toLocaleString('en')} packets written, ${c.rate}/s, ${c.droppedKernel + c.droppedRing} dropped`,
      );
    }
    if (
      interrupted ||
      closed ||
      ended ||
      consumed >= count ||
      file?.finished ||
      (opts.autostop.duration !== undefined && now - started >= opts.autostop.duration * 1000) ||
      (opts.autostop.filesize !== undefined && file !== null && file.bytes >= opts.autostop.filesize * 1000)
    ) {
      break;
    }
  }
  if (readPath === undefined) {
    service.stop();
    // The session hands over what it still held when it stopped: take that too.
    await new Promise((r) => setTimeout(r, POLL_MS));
  } else if (job === null && openJob !== null) {
    // -c reached before the end of the file: read no further.
    await service.handle('job.cancel', { id: openJob }, 'ipc');
  }
  if (!closed) await take();
  for (const s of signals) process.off(s, onSignal);
  offJobs();
  try {
    if (text && !closed) {
      printer.end(text);
      text.flush();
    }
  } catch (err) {
    if (!(err instanceof OutputClosed)) throw err;
  }
  file?.close();
  if (process.stderr.isTTY && file && !opts.quiet) process.stderr.write('\n');
  if (statistics && !closed) {
    try {
      writeAllSync(file?.toStdout ? 2 : 1, Buffer.from(statistics.report()));
    } catch (err) {
      if (!(err instanceof OutputClosed)) throw err;
    }
  }

  const c = service.counts();
  const where =
    file && !file.toStdout
      ? ` to ${file.files > 1 ? `${file.files} files, the last ${file.current}` : file.current}`
      : '';
  if (readPath === undefined) {
    const dropped = c.droppedKernel + c.droppedRing;
    // With -f, how many packets the kernel let through: the measure of its filtering.
    const received = captureFilter
      ? `, ${(c.total + (c.evicted ?? 0)).toLocaleString('en')} reached user space`
      : '';
    process.stderr.write(
      `icmpcap: ${consumed.toLocaleString('en')} packets captured${where}${received}, ${dropped.toLocaleString('en')} dropped by the kernel${c.droppedKernel > 0 ? ` (${bufferFullAdvice(opts.bufferMiB)})` : ''}\n`,
    );
  } else if (file) {
    process.stderr.write(`icmpcap: ${consumed.toLocaleString('en')} packets written${where}\n`);
  }
  const endedJob = job as Job | null;
  if (endedJob?.state === 'error') {
    const message = endedJob.message ?? `cannot read ${opts.read}`;
    throw new Error(readPath ? message.replaceAll(readPath, inputName(opts.read ?? '')) : message);
  }
  const stopped = service.captureState;
  if (readPath === undefined && stopped.message && !interrupted && !closed)
    throw new Error(`the capture stopped: ${stopped.message}`);
}
