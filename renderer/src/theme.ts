/**
 * Light, dark, or as the system says. The page's colours follow `data-theme` on <html> (style.css);
 * "system" resolves it from prefers-color-scheme and keeps following it.
 */
export type ThemeChoice = 'system' | 'light' | 'dark';

const KEY = 'icmpcap.theme';
const media = window.matchMedia('(prefers-color-scheme: dark)');
let choice: ThemeChoice = readChoice();

function readChoice(): ThemeChoice {
  const saved = localStorage.getItem(KEY);
  return saved === 'light' || saved === 'dark' ? saved : 'system';
}

function apply(): void {
  const dark = choice === 'dark' || (choice === 'system' && media.matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

export function themeChoice(): ThemeChoice {
  return choice;
}

export function setTheme(next: ThemeChoice): void {
  choice = next;
  if (next === 'system') localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, next);
  apply();
}

media.addEventListener('change', apply);
apply();
