// Light, dark, or the system's choice; stored in this browser. Charts and sparklines
// listen for the `warden-theme` event to pick up the new colours.

export const THEMES = ['system', 'light', 'dark'];

export function currentTheme() {
  const saved = localStorage.getItem('warden.theme');
  return THEMES.includes(saved) ? saved : 'system';
}

export function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', theme);
  localStorage.setItem('warden.theme', theme);
  dispatchEvent(new Event('warden-theme'));
}

// With the system theme, the colours change when the system's do.
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => dispatchEvent(new Event('warden-theme')));
