/** The contract and the transport agree: the largest request the contract allows fits the wire. */
import { describe, expect, it } from 'vitest';
import { ExportParamsSchema } from './contract.js';
import { FRAME_BYTES, MAX_REQUEST_BYTES, encodeRequest } from './wire.js';

describe('wire format', () => {
  it('carries the largest export the contract allows', () => {
    const nos = Array.from({ length: 1_000_000 }, () => 2 ** 32);
    const params = { format: 'pcapng', scope: 'selected', nos, path: `/${'x'.repeat(4095)}` };
    expect(ExportParamsSchema.safeParse(params).success).toBe(true);
    const text = JSON.stringify({ id: Number.MAX_SAFE_INTEGER, method: 'export.start', params });
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_REQUEST_BYTES);
    // One record more, or a larger record number, is refused by the contract itself.
    expect(ExportParamsSchema.safeParse({ ...params, nos: [...nos, 1] }).success).toBe(false);
    expect(ExportParamsSchema.safeParse({ ...params, nos: [2 ** 32 + 1] }).success).toBe(false);
  });

  it('splits into parts that each fit one frame, whatever the characters', () => {
    for (const unit of ['a', 'é', '€', '😀', '"']) {
      const text = JSON.stringify({
        id: 1,
        method: 'view.setFilter',
        params: { filter: unit.repeat(40_000) },
      });
      const parts = encodeRequest(text);
      expect(parts.length).toBeGreaterThan(1);
      for (const part of parts) expect(Buffer.byteLength(part)).toBeLessThan(FRAME_BYTES);
      expect(parts.map((p) => p.slice(p.indexOf('\n') + 1)).join('')).toBe(text);
    }
    expect(encodeRequest('{"id":1,"method":"hello"}')).toEqual(['{"id":1,"method":"hello"}']);
  });
});
