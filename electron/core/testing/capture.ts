/** Test helpers: a synthetic capture fed batch by batch through the real ingest path, and a view's contents. */
import { IFNAMES, randomCapture } from '../bench/synth.js';
import { Ingestor } from '../ingest.js';
import { Aggregator } from '../stats/aggregator.js';
import { RecordStore } from '../store.js';
import type { View } from '../view.js';

export interface SyntheticCapture {
  store: RecordStore;
  ingestor: Ingestor;
  batches: ArrayBuffer[];
  /** Ingests the next batch (and runs the aggregator over it, as the service does); false when none are left. */
  step(): boolean;
}

export function syntheticCapture(n: number, seed: number): SyntheticCapture {
  const store = new RecordStore();
  const ingestor = new Ingestor(store, (i) => IFNAMES[i] ?? `if${i}`);
  const agg = new Aggregator(ingestor);
  const batches = randomCapture(n, seed, 3000);
  let next = 0;
  return {
    store,
    ingestor,
    batches,
    step() {
      const batch = batches[next++];
      if (!batch) return false;
      const from = store.length;
      ingestor.ingest(batch);
      agg.update(store, from, store.length);
      return true;
    },
  };
}

/** The record indices of a view, in view order. */
export function viewContents(view: View): number[] {
  const out: number[] = [];
  for (let p = 0; p < view.length; p++) out.push(view.indexAt(p));
  return out;
}
