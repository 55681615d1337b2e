// The "Security" part of the settings page: two-factor sign-in (enrol with a QR code,
// confirm with a code, recovery codes shown once; turn off with a code), the signed-in
// user's sessions with "end", and for admins the switch that requires two-factor sign-in
// of every user.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, t, currentLang } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { session } from '../lib/session.js';
import { Field, toast, toastError } from '../lib/ui.js';
import { RecoveryCodes } from './login.js';

addStrings({
  en: {
    'security.title': 'Security',
    'security.2fa': 'Two-factor sign-in',
    'security.on': 'On. {n} recovery codes left.',
    'security.off': 'Off. Signing in needs only your password.',
    'security.enrol': 'Set up two-factor sign-in',
    'security.scan': 'Scan the QR code with an authenticator app (or type the secret), then enter the 6-digit code it shows.',
    'security.confirm': 'Turn on',
    'security.disable': 'Turn off',
    'security.disableHelp': 'A current code or a recovery code',
    'security.disabled': 'Two-factor sign-in is off.',
    'security.sessions': 'Sessions',
    'security.this': 'this session',
    'security.created': 'Signed in {at}',
    'security.seen': 'last used {at}',
    'security.end': 'End',
    'security.ended': 'Session ended.',
    'security.require': 'Require two-factor sign-in of every user',
    'security.requireHelp': 'Users without it set it up right after their password. API tokens are not affected.',
  },
  ko: {
    'security.title': '보안',
    'security.2fa': '2단계 로그인',
    'security.on': '켜짐. 남은 복구 코드 {n}개.',
    'security.off': '꺼짐. 비밀번호만으로 로그인합니다.',
    'security.enrol': '2단계 로그인 설정',
    'security.scan': '인증 앱으로 QR 코드를 스캔하거나 비밀 키를 입력한 뒤, 앱에 표시된 6자리 코드를 입력하세요.',
    'security.confirm': '켜기',
    'security.disable': '끄기',
    'security.disableHelp': '현재 코드 또는 복구 코드',
    'security.disabled': '2단계 로그인이 꺼졌습니다.',
    'security.sessions': '세션',
    'security.this': '현재 세션',
    'security.created': '{at}에 로그인',
    'security.seen': '마지막 사용 {at}',
    'security.end': '종료',
    'security.ended': '세션을 종료했습니다.',
    'security.require': '모든 사용자에게 2단계 로그인 요구',
    'security.requireHelp': '설정하지 않은 사용자는 비밀번호 다음에 바로 설정합니다. API 토큰에는 영향이 없습니다.',
  },
});

const when = (ms) => new Date(ms).toLocaleString(currentLang());

export function Security() {
  const [status, setStatus] = useState(null);
  const [enrol, setEnrol] = useState(null);
  const [code, setCode] = useState('');
  const [codes, setCodes] = useState(null);
  const [sessions, setSessions] = useState([]);
  const [policy, setPolicy] = useState(null);
  const admin = session.role === 'admin';

  const load = () => {
    api.get('/api/auth/2fa').then(setStatus).catch(toastError);
    api.get('/api/auth/sessions').then(setSessions).catch(toastError);
    if (admin) api.get('/api/auth/policy').then(setPolicy).catch(toastError);
  };
  useEffect(load, []);

  const start = () => api.post('/api/auth/2fa/enrol').then(setEnrol).catch(toastError);
  const confirm = async (e) => {
    e.preventDefault();
    try {
      const r = await api.post('/api/auth/2fa/confirm', { code: code.trim() });
      setCodes(r.recovery_codes);
      setEnrol(null);
      setCode('');
      load();
    } catch (err) {
      toastError(err);
    }
  };
  const disable = async (e) => {
    e.preventDefault();
    try {
      await api.post('/api/auth/2fa/disable', { code: code.trim() });
      setCode('');
      toast(t('security.disabled'));
      load();
    } catch (err) {
      toastError(err);
    }
  };
  const end = async (id) => {
    try {
      await api.del(`/api/auth/sessions/${seg(id)}`);
      toast(t('security.ended'));
      load();
    } catch (err) {
      toastError(err);
    }
  };
  const setRequire = async (on) => {
    try {
      setPolicy(await api.put('/api/auth/policy', { require_2fa: on }));
    } catch (err) {
      toastError(err);
    }
  };

  return html`<section class="card" data-security>
    <h2>${t('security.title')}</h2>
    <h3>${t('security.2fa')}</h3>
    ${status && html`<p data-2fa-state=${status.enabled ? 'on' : 'off'}>
      ${status.enabled ? t('security.on', { n: status.recovery_codes_left }) : t('security.off')}</p>`}
    ${codes && html`<${RecoveryCodes} codes=${codes} onDone=${() => setCodes(null)} />`}
    ${status && !status.enabled && !enrol &&
    html`<button type="button" class="btn primary" data-enrol onClick=${start}>${t('security.enrol')}</button>`}
    ${enrol &&
    html`<form class="inline-form" data-enrol-form onSubmit=${confirm}>
      <p>${t('security.scan')}</p>
      <div class="qr" dangerouslySetInnerHTML=${{ __html: enrol.qr_svg }}></div>
      <p class="small" style="overflow-wrap:anywhere">${t('login2fa.secret')}: <code data-secret>${enrol.secret}</code></p>
      <${Field} id="enrol-code" label=${t('login2fa.code')}>
        <input id="enrol-code" autocomplete="one-time-code" required spellcheck="false"
          value=${code} onInput=${(e) => setCode(e.currentTarget.value)} />
      <//>
      <button type="submit" class="btn primary">${t('security.confirm')}</button>
    </form>`}
    ${status && status.enabled &&
    html`<form class="inline-form" onSubmit=${disable}>
      <${Field} id="disable-code" label=${t('login2fa.code')} help=${t('security.disableHelp')}>
        <input id="disable-code" autocomplete="one-time-code" required spellcheck="false"
          value=${code} onInput=${(e) => setCode(e.currentTarget.value)} />
      <//>
      <button type="submit" class="btn">${t('security.disable')}</button>
    </form>`}
    ${admin && policy &&
    html`<label class="check">
      <input type="checkbox" id="require-2fa" checked=${policy.require_2fa}
        onChange=${(e) => setRequire(e.currentTarget.checked)} />
      ${' '}${t('security.require')}
    </label>
    <p class="muted small">${t('security.requireHelp')}</p>`}
    <h3>${t('security.sessions')}</h3>
    <ul class="plain" data-sessions>
      ${sessions.map(
        (s) => html`<li data-session=${s.id} style="overflow-wrap:anywhere">
          <strong>${s.address || '-'}</strong>${s.current ? html` (${t('security.this')})` : ''}
          <br /><span class="muted small">${t('security.created', { at: when(s.created_at) })},
          ${' '}${t('security.seen', { at: when(s.last_seen_at) })}</span>
          ${s.user_agent && html`<br /><span class="muted small" data-user-data>${s.user_agent}</span>`}
          <br /><button type="button" class="btn small" onClick=${() => end(s.id)}>${t('security.end')}</button>
        </li>`,
      )}
    </ul>
  </section>`;
}
