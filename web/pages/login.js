// The sign-in page. While no user exists it offers "create the first administrator",
// guarded by the one-time setup code that `warden serve` printed (and wrote to the data
// directory's setup-code file); the CLI way is named too.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, t } from '../lib/i18n.js';
import { api } from '../lib/api.js';
import { Field } from '../lib/ui.js';

const FIRST_ADMIN = 'warden user add admin --role admin --password-stdin';

addStrings({
  en: {
    'setup.title': 'Create the first administrator',
    'setup.intro': 'No users exist yet. Enter the setup code that warden printed when it started (it is also in the setup-code file in the data directory).',
    'setup.code': 'Setup code',
    'setup.submit': 'Create administrator and sign in',
    'setup.badCode': 'That setup code is wrong. Use the one warden printed, or read it from that file.',
    'setup.taken': 'An administrator already exists. Sign in below.',
    'setup.short': 'The password needs at least 8 characters.',
    'setup.cli': 'Or, on the server:',
  },
  ko: {
    'setup.title': '첫 관리자 만들기',
    'setup.intro': '아직 사용자가 없습니다. warden이 시작할 때 출력한 설정 코드를 입력하세요 (warden 데이터 폴더의 setup-code 파일에도 있습니다).',
    'setup.code': '설정 코드',
    'setup.submit': '관리자를 만들고 로그인',
    'setup.badCode': '설정 코드가 틀렸습니다. warden이 출력한 코드나 위 파일의 코드를 쓰세요.',
    'setup.taken': '관리자가 이미 있습니다. 아래에서 로그인하세요.',
    'setup.short': '비밀번호는 8자 이상이어야 합니다.',
    'setup.cli': '또는 서버에서:',
  },
});

/** The first administrator, created with the setup code; signs in on success. */
function FirstAdmin({ onLogin, onTaken }) {
  const [code, setCode] = useState('');
  const [user, setUser] = useState('admin');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    if (password.length < 8) {
      setError(t('setup.short'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.post('/api/setup/admin', { code: code.trim(), username: user, password });
      onLogin(await api.post('/api/auth/login', { username: user, password }, { quiet401: true }));
    } catch (err) {
      if (err.status === 403) setError(t('setup.badCode'));
      else if (err.status === 409) onTaken();
      else if (err.status === 429) setError(t('login.rate'));
      else setError(t('common.error', { msg: err.message }));
      setBusy(false);
    }
  };
  return html`<form class="card login-card" data-first-run onSubmit=${submit}>
    <h1>${t('setup.title')}</h1>
    <p>${t('setup.intro')}</p>
    <${Field} id="setup-code" label=${t('setup.code')}>
      <input id="setup-code" autocomplete="one-time-code" required autofocus spellcheck="false"
        value=${code} onInput=${(e) => setCode(e.currentTarget.value)} />
    <//>
    <${Field} id="setup-user" label=${t('login.user')}>
      <input id="setup-user" autocomplete="username" required value=${user} onInput=${(e) => setUser(e.currentTarget.value)} />
    <//>
    <${Field} id="setup-password" label=${t('login.password')}>
      <input id="setup-password" type="password" autocomplete="new-password" required minlength="8"
        value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} />
    <//>
    ${error && html`<p id="setup-error" class="error" role="alert">${error}</p>`}
    <button type="submit" class="btn primary wide" disabled=${busy}>${t('setup.submit')}</button>
    <details class="small">
      <summary>${t('setup.cli')}</summary>
      <pre><code>${FIRST_ADMIN}</code></pre>
    </details>
  </form>`;
}

export function Login({ onLogin, expired }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(expired ? t('login.expired') : null);
  const [hasUsers, setHasUsers] = useState(true);

  useEffect(() => {
    api
      .get('/api/setup', { quiet401: true })
      .then((r) => {
        setHasUsers(r.has_users);
      })
      .catch(() => {});
  }, []);
  if (!hasUsers) {
    return html`<main id="main" tabindex="-1" class="login">
      <${FirstAdmin} onLogin=${onLogin} onTaken=${() => {
        setHasUsers(true);
        setError(t('setup.taken'));
      }} />
    </main>`;
  }

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
