// The sign-in page. While no user exists it offers "create the first administrator",
// guarded by the one-time setup code that `warden serve` printed (and wrote to the data
// directory's setup-code file); the CLI way is named too.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, t } from '../lib/i18n.js';
import { api } from '../lib/api.js';
import { errorText, Field } from '../lib/ui.js';

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
    'login2fa.title': 'Two-factor sign-in',
    'login2fa.intro': 'Enter the 6-digit code from your authenticator app, or one of your recovery codes.',
    'login2fa.enrolIntro': 'This server requires two-factor sign-in. Scan the QR code with an authenticator app (or type the secret), then enter the 6-digit code it shows.',
    'login2fa.secret': 'Secret',
    'login2fa.code': 'Code',
    'login2fa.submit': 'Verify and sign in',
    'login2fa.wrong': 'That code is wrong or was already used. Try the current code.',
    'login2fa.expired': 'This sign-in has expired. Enter your password again.',
    'login2fa.recovery': 'Your recovery codes. Each works once in place of a code. Store them somewhere safe: they are shown only now.',
    'login2fa.copy': 'Copy codes',
    'login2fa.copied': 'Copied',
    'login2fa.continue': 'Continue',
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
    'login2fa.title': '2단계 로그인',
    'login2fa.intro': '인증 앱의 6자리 코드나 복구 코드 하나를 입력하세요.',
    'login2fa.enrolIntro': '이 서버는 2단계 로그인이 필요합니다. 인증 앱으로 QR 코드를 스캔하거나 비밀 키를 입력한 뒤, 앱에 표시된 6자리 코드를 입력하세요.',
    'login2fa.secret': '비밀 키',
    'login2fa.code': '코드',
    'login2fa.submit': '확인하고 로그인',
    'login2fa.wrong': '코드가 틀렸거나 이미 사용되었습니다. 현재 코드를 입력하세요.',
    'login2fa.expired': '로그인 시간이 지났습니다. 비밀번호를 다시 입력하세요.',
    'login2fa.recovery': '복구 코드입니다. 각 코드는 인증 코드 대신 한 번만 쓸 수 있습니다. 지금만 표시되니 안전한 곳에 보관하세요.',
    'login2fa.copy': '코드 복사',
    'login2fa.copied': '복사됨',
    'login2fa.continue': '계속',
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
      else setError(errorText(err));
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

/** Recovery codes, shown once, with a copy button. */
export function RecoveryCodes({ codes, onDone }) {
  const [copied, setCopied] = useState(false);
  const copy = () => {
    navigator.clipboard?.writeText(codes.join('\n')).then(() => setCopied(true)).catch(() => {});
  };
  return html`<div data-recovery-codes>
    <p>${t('login2fa.recovery')}</p>
    <ul class="recovery-codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
    <button type="button" class="btn" onClick=${copy}>${copied ? t('login2fa.copied') : t('login2fa.copy')}</button>
    ${onDone && html` <button type="button" class="btn primary" onClick=${onDone}>${t('login2fa.continue')}</button>`}
  </div>`;
}

/** The second step of a login: a code (and first an enrolment when the site requires it). */
function SecondStep({ challenge, onLogin, onRestart }) {
  const [code, setCode] = useState('');
  const [enrol, setEnrol] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  useEffect(() => {
    if (challenge.next !== 'enrol') return;
    api
      .post('/api/auth/login/enrol', { ticket: challenge.ticket }, { quiet401: true })
      .then(setEnrol)
      .catch(() => onRestart(t('login2fa.expired')));
  }, [challenge.ticket]);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api.post('/api/auth/login/code', { ticket: challenge.ticket, code: code.trim() }, { quiet401: true });
      if (me.recovery_codes) setDone(me);
      else onLogin(me);
    } catch (err) {
      if (err.status === 401 && err.code === 'login_expired') onRestart(t('login2fa.expired'));
      else if (err.status === 401) setError(t('login2fa.wrong'));
      else if (err.status === 429) setError(t('login.rate'));
      else setError(errorText(err));
      setBusy(false);
    }
  };
  if (done) {
    return html`<div class="card login-card"><h1>${t('login2fa.title')}</h1>
      <${RecoveryCodes} codes=${done.recovery_codes} onDone=${() => onLogin(done)} /></div>`;
  }
  return html`<form class="card login-card" data-second-step onSubmit=${submit}>
    <h1>${t('login2fa.title')}</h1>
    <p>${challenge.next === 'enrol' ? t('login2fa.enrolIntro') : t('login2fa.intro')}</p>
    ${enrol && html`<div class="qr" dangerouslySetInnerHTML=${{ __html: enrol.qr_svg }}></div>
      <p class="small">${t('login2fa.secret')}: <code data-secret>${enrol.secret}</code></p>`}
    <${Field} id="login-code" label=${t('login2fa.code')}>
      <input id="login-code" autocomplete="one-time-code" required autofocus spellcheck="false"
        value=${code} onInput=${(e) => setCode(e.currentTarget.value)} />
    <//>
    ${error && html`<p id="login-error" class="error" role="alert">${error}</p>`}
    <button type="submit" class="btn primary wide" disabled=${busy}>${t('login2fa.submit')}</button>
  </form>`;
}

export function Login({ onLogin, expired }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(expired ? t('login.expired') : null);
  const [hasUsers, setHasUsers] = useState(true);
  const [challenge, setChallenge] = useState(null);

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
      if (me.ticket) {
        setChallenge(me);
        setBusy(false);
      } else onLogin(me);
    } catch (err) {
      if (err.status === 429) setError(t('login.rate'));
      else if (err.status === 401) setError(t('login.failed'));
      else setError(errorText(err));
      setBusy(false);
    }
  };

  if (challenge) {
    return html`<main id="main" tabindex="-1" class="login">
      <${SecondStep} challenge=${challenge} onLogin=${onLogin} onRestart=${(msg) => {
        setChallenge(null);
        setPassword('');
        setError(msg);
      }} />
    </main>`;
  }

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
