/**
 * Keyboard of the packet table: arrows, page keys, Home/End move the selection (queued, so a move that
 * fetches its row off screen is not overtaken by the next key); Left/Right move the focused column;
 * Enter opens the details; the menu key (or Shift+F10) opens the filter menu of the focused cell.
 */
import type { Row } from '@common/contract';
import type { Ref } from 'vue';
import type { ColumnId } from '../columns';
import { useSettingsStore } from '../stores/settings';
import { useViewStore } from '../stores/view';

export interface TableKeyboardOptions {
  rows: Ref<Row[]>;
  rowsStart: Ref<number>;
  first: Ref<number>;
  visible: Ref<number>;
  viewCount: () => number;
  focusCol: Ref<ColumnId>;
  openMenu: () => void;
  openDetails: () => void;
  jumpToNewest: () => void;
}

export function useTableKeyboard(o: TableKeyboardOptions) {
  const view = useViewStore();
  const settings = useSettingsStore();
  let moves: Promise<void> = Promise.resolve();

  function queueMove(target: () => number): void {
    moves = moves
      .then(() => view.selectAt(target(), o.viewCount(), o.rows.value, o.rowsStart.value))
      .catch(() => undefined);
  }

  function move(delta: number): void {
    const fallback = () => (delta > 0 ? o.first.value - 1 : o.first.value + o.visible.value - 1);
    queueMove(() => (view.selectedPos ?? fallback()) + delta);
  }

  function moveColumn(delta: number): void {
    const ids = settings.visibleColumns.map((c) => c.id);
    const i = ids.indexOf(o.focusCol.value);
    o.focusCol.value = ids[Math.max(0, Math.min(ids.length - 1, i + delta))] ?? ids[0]!;
  }

  function onKey(e: KeyboardEvent): void {
    const page = Math.max(1, o.visible.value - 2);
    const keys: Record<string, () => void> = {
      ArrowDown: () => move(1),
      ArrowUp: () => move(-1),
      PageDown: () => move(page),
      PageUp: () => move(-page),
      Home: () => queueMove(() => 0),
      End: () => {
        queueMove(() => o.viewCount() - 1);
        o.jumpToNewest();
      },
      ArrowLeft: () => moveColumn(-1),
      ArrowRight: () => moveColumn(1),
      Enter: o.openDetails,
      ContextMenu: o.openMenu,
      Escape: () => view.clearSelection(),
    };
    const action = e.key === 'F10' && e.shiftKey ? o.openMenu : keys[e.key];
    if (!action || e.altKey || e.ctrlKey) return;
    e.preventDefault();
    action();
  }

  return { onKey };
}
