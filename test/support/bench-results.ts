/**
 * Merges benchmark figures into bench/results.json (read, add or replace these keys, write), which
 * scripts/bench-report.mjs turns into docs/BENCHMARKS.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchFigure {
  value: number;
  unit: string;
  /** The command that produced it. */
  command: string;
  /** What exactly was measured, and next to what. */
  note: string;
}

export function mergeBenchResults(figures: Record<string, BenchFigure>): void {
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const file = path.join(repoRoot, 'bench', 'results.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    // first results in this checkout
  }
  Object.assign(all, figures);
  fs.writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  for (const [key, m] of Object.entries(figures)) console.log(`${key}: ${m.value} ${m.unit}`);
}
