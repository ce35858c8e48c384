/** `icmpcap interfaces` and `capture -D`: the interfaces a capture can use. */
import { loadNative } from '../native.js';

/** `table`: index, name, state, addresses; `tshark`: `1. lo` lines as `tshark -D` prints them. */
export function interfaces(style: 'table' | 'tshark' = 'table'): void {
  const native = loadNative();
  const list = native.interfaces();
  if (style === 'tshark') {
    const lines = list.map((i, n) => `${n + 1}. ${i.name}${i.loopback ? ' (Loopback)' : ''}`);
    lines.push(`${list.length + 1}. any`);
    process.stdout.write(lines.join('\n') + '\n');
    return;
  }
  for (const i of list) {
    const state = i.up ? (i.running ? 'up' : 'up, no carrier') : 'down';
    const addrs = i.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(' ');
    process.stdout.write(
      `${String(i.index).padStart(3)}  ${i.name.padEnd(16)} ${state.padEnd(15)} ${addrs}\n`,
    );
  }
}
