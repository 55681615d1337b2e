// Settings of this browser (language, theme) and of the signed-in account (password,
// and the Security part in security.js: two-factor sign-in, sessions).

import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, LANGUAGES, currentLang } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { session } from '../lib/session.js';
import { Field, toast, toastError } from '../lib/ui.js';
import { currentTheme, THEMES } from '../lib/theme.js';
import { Security } from './security.js';

export function Settings({ onLang, onTheme }) {
  const [password, setPassword] = useState('');
  // Token principals ("token:NAME") have no password to change.
  const isUser = session.user && !session.user.startsWith('token:');

  const change = async (e) => {
    e.preventDefault();
    try {
      await api.put(`/api/users/${seg(session.user)}/password`, { password });
      setPassword('');
      toast(t('users.passwordSet'));
      // The change ended this session too; asking who we are now answers 401, which
      // takes the app back to the sign-in page.
      await api.get('/api/auth/me').catch(() => {});
    } catch (err) {
      toastError(err);
    }
  };

  return html`<main id="main" tabindex="-1" class="page narrow">
    <h1>${t('settings.title')}</h1>
    <section class="card">
      <${Field} id="set-lang" label=${t('settings.language')}>
        <select id="set-lang" value=${currentLang()} onChange=${(e) => onLang(e.currentTarget.value)}>
          ${LANGUAGES.map((l) => html`<option value=${l.code} lang=${l.code}>${l.label}</option>`)}
        </select>
      <//>
      <${Field} id="set-theme" label=${t('settings.theme')}>
        <select id="set-theme" value=${currentTheme()} onChange=${(e) => onTheme(e.currentTarget.value)}>
          ${THEMES.map((th) => html`<option value=${th}>${t(`settings.theme.${th}`)}</option>`)}
        </select>
      <//>
      <p class="muted small">${t('settings.stored')}</p>
    </section>
    <section class="card">
      <h2>${t('settings.account')}</h2>
      <p>${t('settings.signedIn', { user: session.user, role: t(`role.${session.role}`) })}</p>
      ${isUser &&
      html`<form class="inline-form" onSubmit=${change}>
        <h3>${t('settings.password')}</h3>
        <${Field} id="set-pw" label=${t('settings.newPassword')} help=${t('settings.passwordHelp')}>
          <input id="set-pw" type="password" autocomplete="new-password" required minlength="8"
            value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} />
        <//>
        <button type="submit" class="btn primary">${t('common.save')}</button>
      </form>`}
    </section>
    ${isUser && html`<${Security} />`}
  </main>`;
}
