// The update panel of a program installed from a template: installed vs available build,
// the update under way (its step), the next window, and "Check" / "Update now" for those
// allowed to define the program. Programs not installed from a template show nothing.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, fmt, t } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { allowed } from '../lib/session.js';
import { toast, toastError } from '../lib/ui.js';
import { GuardForm } from '../lib/guard.js';

addStrings({
  en: {
    'update.title': 'Updates',
    'update.guard': 'The last update stopped because Steam asks for a Steam Guard code. Enter it to update again.',
    'update.installed': 'Installed build',
    'update.available': 'Available build',
    'update.unknown': 'not checked yet',
    'update.newer': 'update available',
    'update.current': 'up to date',
    'update.state': 'State',
    'update.state.idle': 'idle',
    'update.state.checking': 'checking',
    'update.state.updating': 'updating',
    'update.waiting': 'waiting for {what}',
    'update.window': 'Next window',
    'update.window.when_empty': 'when nobody is online',
    'update.window.warn_then_force': 'when nobody is online, or after {wait} with warnings',
    'update.window.manual': 'when someone applies it',
    'update.last': 'Last update',
    'update.result.succeeded': 'succeeded',
    'update.result.rolled_back': 'failed and rolled back',
    'update.result.failed': 'failed',
    'update.check': 'Check now',
    'update.apply': 'Update now',
    'update.started': 'Update started',
    'update.step.staging': 'downloading',
    'update.step.waiting': 'waiting',
    'update.step.stopping': 'stopping',
    'update.step.backing_up': 'backing up',
    'update.step.applying': 'applying',
    'update.step.starting': 'starting',
    'update.step.verifying': 'checking readiness',
    'update.step.rolling_back': 'rolling back',
  },
  ko: {
    'update.title': '업데이트',
    'update.guard': 'Steam이 Steam Guard 코드를 요구해 지난 업데이트가 멈췄습니다. 코드를 입력해 다시 업데이트하세요.',
    'update.installed': '설치된 빌드',
    'update.available': '사용 가능한 빌드',
    'update.unknown': '아직 확인 안 함',
    'update.newer': '업데이트 있음',
    'update.current': '최신 상태',
    'update.state': '상태',
    'update.state.idle': '대기',
    'update.state.checking': '확인 중',
    'update.state.updating': '업데이트 중',
    'update.waiting': '{what} 대기 중',
    'update.window': '다음 적용 시점',
    'update.window.when_empty': '접속자가 없을 때',
    'update.window.warn_then_force': '접속자가 없을 때, 또는 경고 후 {wait} 뒤',
    'update.window.manual': '누군가 적용할 때',
    'update.last': '마지막 업데이트',
    'update.result.succeeded': '성공',
    'update.result.rolled_back': '실패하여 되돌림',
    'update.result.failed': '실패',
    'update.check': '지금 확인',
    'update.apply': '지금 업데이트',
    'update.started': '업데이트 시작됨',
    'update.step.staging': '다운로드 중',
    'update.step.waiting': '대기 중',
    'update.step.stopping': '중지 중',
    'update.step.backing_up': '백업 중',
    'update.step.applying': '적용 중',
    'update.step.starting': '시작 중',
    'update.step.verifying': '준비 확인 중',
    'update.step.rolling_back': '되돌리는 중',
  },
});

export function UpdatePanel({ name }) {
  const [s, setS] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = () =>
    api
      .get(`/api/programs/${seg(name)}/update`, { quiet401: true })
      .then(setS)
      .catch(() => setS(null));
  useEffect(() => {
    // Polls while the program was installed from a template; others are asked once.
    let timer = null;
    let ended = false;
    const tick = () =>
      api
        .get(`/api/programs/${seg(name)}/update`, { quiet401: true })
        .then((v) => {
          if (ended) return;
          setS(v);
          if (v && v.installed_from_template) timer = setTimeout(tick, 3000);
        })
        .catch(() => !ended && setS(null));
    tick();
    return () => {
      ended = true;
      clearTimeout(timer);
    };
  }, [name]);
  if (!s || !s.installed_from_template) return null;
  const define = allowed('define', name);
  const act = async (path, body, done) => {
    setBusy(true);
    try {
      await api.post(`/api/programs/${seg(name)}/update/${path}`, body);
      if (done) toast(done);
      await load();
    } catch (e) {
      toastError(e);
    } finally {
      setBusy(false);
    }
  };
  const settings = s.settings || {};
  const windowText = t(`update.window.${settings.apply || 'when_empty'}`, { wait: settings.max_wait || '' });
  const state = s.step ? t(`update.step.${s.step}`) : t(`update.state.${s.state}`);
  return html`<section class="card" aria-labelledby="update-h" data-update data-update-state=${s.state}>
    <div class="toolbar">
      <h2 id="update-h">${t('update.title')}</h2>
      <span class="grow"></span>
      ${define && html`<button type="button" class="btn" data-update-check disabled=${busy || s.state !== 'idle'} onClick=${() => act('check', {})}>${t('update.check')}</button>`}
      ${define && html`<button type="button" class="btn primary" data-update-apply disabled=${busy || s.state !== 'idle'} onClick=${() => act('apply', { now: true }, t('update.started'))}>${t('update.apply')}</button>`}
    </div>
    <dl class="facts">
      <div><dt>${t('update.installed')}</dt><dd class="num" data-installed>${s.installed || t('common.none')}</dd></div>
      <div><dt>${t('update.available')}</dt><dd class="num" data-available>${s.available
        ? html`${s.available} <span class="muted small">${s.update_available ? t('update.newer') : t('update.current')}</span>`
        : t('update.unknown')}</dd></div>
      <div><dt>${t('update.state')}</dt><dd>${state}${s.pipeline && s.pipeline.waiting_for ? html` <span class="muted small">${t('update.waiting', { what: s.pipeline.waiting_for })}</span>` : ''}</dd></div>
      <div><dt>${t('update.window')}</dt><dd>${windowText}</dd></div>
      ${s.last && html`<div><dt>${t('update.last')}</dt><dd>${t(`update.result.${s.last.result}`)} · <span class="num">${s.last.build}</span> · <time class="small num">${fmt.time(s.last.ts)}</time></dd></div>`}
    </dl>
    ${define && s.state === 'idle' && s.last && s.last.code === 'steam_guard' &&
    html`<div class="note" role="status" data-update-guard>
      <p>${t('update.guard')}</p>
      <${GuardForm} id="update-guard" label=${t('guard.update')} onSubmit=${async (code) => {
        await api.post(`/api/programs/${seg(name)}/update/apply`, { now: true, guard_code: code });
        toast(t('update.started'));
        await load();
      }} />
    </div>`}
  </section>`;
}
