/**
 * Alert firings as desktop notifications (Electron's Notification, shown by the main process, so they come
 * even while the window is hidden). Written against the one Electron API it uses, so unit tests drive it
 * with a stand-in; main.ts passes the real module.
 */
import type { NotificationConstructorOptions } from 'electron';
import type { EventListener } from '../core/service.js';
import { firingText } from '../common/firing-text.js';
import type { AlertFiring } from '../common/insights.js';

export interface NotificationLike {
  show(): void;
  on(event: 'click', listener: () => void): unknown;
}

export interface NotifierElectron {
  Notification: {
    new (options: NotificationConstructorOptions): NotificationLike;
    isSupported(): boolean;
  };
}

/** Shows a notification per firing; a click runs `onClick` (bring the window forward). Returns the off switch. */
export function notifyFirings(
  electron: NotifierElectron,
  service: { on(listener: EventListener): () => void },
  onClick: () => void = () => undefined,
): () => void {
  if (!electron.Notification.isSupported()) return () => undefined;
  return service.on((event, data) => {
    if (event !== 'alert.fired') return;
    const { title, body } = firingText(data as AlertFiring);
    const note = new electron.Notification({ title, body });
    note.on('click', onClick);
    note.show();
  });
}
