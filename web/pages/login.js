// The sign-in page, with the first-run hint when no user exists yet.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t } from '../lib/i18n.js';
import { api } from '../lib/api.js';
import { Field } from '../lib/ui.js';

const FIRST_ADMIN = 'warden user add admin --role admin --password-stdin';

export function Login({ onLogin, expired }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(expired ? t('login.expired') : null);
  const [hasUsers, setHasUsers] = useState(true);

  useEffect(() => {
    api
      .get('/api/setup', { quiet401: true })
      .then((r) => setHasUsers(r.has_users))
      .catch(() => {});
  }, []);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api.post('/api/auth/login', { username: user, password }, { quiet401: true });
      onLogin(me);
    } catch (err) {
      if (err.status === 429) setError(t('login.rate'));
      else if (err.status === 401) setError(t('login.failed'));
      else setError(t('common.error', { msg: err.message }));
      setBusy(false);
    }
  };

  return html`<main id="main" tabindex="-1" class="login">
    <form class="card login-card" onSubmit=${submit} aria-describedby=${error ? 'login-error' : undefined}>
      <h1>${t('login.title')}</h1>
      ${!hasUsers &&
      html`<div class="note" data-first-run>
        <p>${t('login.firstRun')}</p>
        <pre><code>${FIRST_ADMIN}</code></pre>
      </div>`}
      <${Field} id="login-user" label=${t('login.user')}>
        <input id="login-user" name="username" autocomplete="username" required autofocus
          value=${user} onInput=${(e) => setUser(e.currentTarget.value)} />
      <//>
      <${Field} id="login-password" label=${t('login.password')}>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} />
      <//>
      ${error && html`<p id="login-error" class="error" role="alert">${error}</p>`}
      <button type="submit" class="btn primary wide" disabled=${busy}>
        ${busy ? t('login.busy') : t('login.submit')}
      </button>
    </form>
  </main>`;
}
