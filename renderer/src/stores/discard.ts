/**
 * "Save before…", as Wireshark asks: Clear, Start and Open replace what is shown, so when captured
 * packets are in no file yet the user is asked first (export, discard, or cancel).
 */
import { defineStore } from 'pinia';
import { shallowRef } from 'vue';
import { useCaptureStore } from './capture';

export type DiscardingAction = 'Clear' | 'Start' | 'Open';

export const useDiscardStore = defineStore('discard', () => {
  const pending = shallowRef<{ action: DiscardingAction; unsaved: number; proceed: () => void } | null>(null);

  /** Runs `proceed` now when nothing would be lost, else once the user says to discard. */
  function guard(action: DiscardingAction, proceed: () => void): void {
    const unsaved = useCaptureStore().unsaved;
    if (unsaved === 0) proceed();
    else pending.value = { action, unsaved, proceed };
  }

  function discard(): void {
    const p = pending.value;
    pending.value = null;
    p?.proceed();
  }

  function cancel(): void {
    pending.value = null;
  }

  return { pending, guard, discard, cancel };
});
