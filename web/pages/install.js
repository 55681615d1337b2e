// The install wizard (admin): pick a template (`GET /api/templates`), fill its variables
// in a form made from their types (ports and numbers, on/off switches, passwords for
// secrets, defaults filled in), install (`POST /api/install`; the server's field errors
// are shown beside their fields), then follow the install's progress
// (`GET /api/install/{id}`) until the new program is ready to open.
//
// Template titles, descriptions and variable (and port) descriptions come from the
// template files (shipped or the administrator's own in DATA/templates). In Korean mode
// their Korean texts (`title_ko`, `description_ko`: every shipped template has them) are
// shown as warden's own words; a text without one is shown as written, marked as English
// user data, as it is in English mode. The wizard's own words are translated.

import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt, addStrings, has, currentLang } from '../lib/i18n.js';
import { api } from '../lib/api.js';
import { can } from '../lib/session.js';
import { errorText, Field, errorsByField, href, unplacedErrors } from '../lib/ui.js';
import { GuardForm } from '../lib/guard.js';

addStrings({
  en: {
    'install.open': 'New server',
    'install.title': 'New server from a template',
    'install.pick': 'Choose what to install',
    'install.choose': 'Install this',
    'install.chooseLabel': 'Install {title}',
    'install.notHere': 'Not for this system; it needs:',
    'install.source.steamcmd': 'SteamCMD app {app}',
    'install.source.minecraft': 'Minecraft ({flavor})',
    'install.source.url': 'Download',
    'install.flavor.vanilla': 'vanilla',
    'install.flavor.paper': 'Paper',
    'install.ports': 'Ports',
    'install.back': 'Other template',
    'install.name': 'Program name',
    'install.nameHelp': 'Lowercase letters, digits and dashes; also the name of its folder.',
    'install.settings': 'Settings',
    'install.help.port': 'A port number from 1 to 65535.',
    'install.help.integer': 'A whole number.',
    'install.help.secretGenerated': 'Password: leave empty for a random one.',
    'install.help.secret': 'Password: leave empty for none.',
    'install.help.secretDefault': 'Password: leave empty to keep the template’s.',
    'install.required': 'required',
    'install.on': 'On',
    'install.submit': 'Install',
    'install.submitting': 'Starting the install…',
    'install.progress': 'Installing {name}',
    'install.state.waiting_for_steamcmd': 'Waiting for SteamCMD (one install at a time)',
    'install.state.downloading': 'Downloading',
    'install.state.configuring': 'Writing the configuration',
    'install.state.installed': 'Installed',
    'install.state.failed': 'Failed',
    'install.bytes': '{done} of {total}',
    'install.build': 'Build {build}',
    'install.done': '{name} is installed and stopped, ready to start.',
    'install.openProgram': 'Open {name}',
    'install.failedBody': 'Nothing was left behind. Fix the cause and install again.',
    'install.failed.java_too_old': 'Minecraft {minecraft} needs Java {need}, but {java} is Java {have}. Install Java {need}, or set install.java in warden’s config to a Java {need} executable.',
    'install.failed.java_missing': 'No Java was found that can run this server. Install Java, or set install.java in warden’s config to its executable.',
    'install.failed.disk_full': 'The disk is full. Free space and try again.',
    'install.failed.no_subscription': 'This Steam account does not own this server, or the app needs another login.',
    'install.failed.steam_guard': 'Steam asks for a Steam Guard code. Enter it below to install again.',
    'install.failed.login_failed': 'Steam refused the login. Check the account name and password.',
    'install.failed.rate_limited': 'Steam asks to wait before the next login. Try again later.',
    'install.failed.timeout': 'The download took too long. Check the network and try again.',
    'install.failed.steamcmd_missing': 'SteamCMD cannot be run. Install it, or set install.steamcmd in warden’s config.',
    'install.failed.steamcmd_failed': 'SteamCMD failed. Its last words are below.',
    'install.failed.checksum_mismatch': 'The download is damaged (its checksum does not match). Try again.',
    'install.failed.download_failed': 'The download failed. Check the network and try again.',
    'install.failed.unknown_version': 'This version is not known. Choose another one.',
    'install.failed.write_failed': 'The files could not be written. Check the folder’s permissions and free space.',
    'install.failed.define_failed': 'The files are in place, but the program could not be created.',
    'install.failed.other': 'The install failed (code {code}).',
    'install.again': 'Try again',
    'install.problems': 'Some template files in the data directory could not be used:',
  },
  ko: {
    'install.open': '새 서버',
    'install.title': '템플릿으로 새 서버 만들기',
    'install.pick': '설치할 서버를 고르세요',
    'install.choose': '이것으로 설치',
    'install.chooseLabel': '{title} 설치',
    'install.notHere': '이 시스템용이 아닙니다. 필요한 시스템:',
    'install.source.steamcmd': 'SteamCMD 앱 {app}',
    'install.source.minecraft': 'Minecraft ({flavor})',
    'install.source.url': '내려받기',
    'install.flavor.vanilla': '바닐라',
    'install.flavor.paper': 'Paper',
    'install.ports': '포트',
    'install.back': '다른 템플릿',
    'install.name': '프로그램 이름',
    'install.nameHelp': '영문 소문자, 숫자, 대시(-)만 쓸 수 있으며 폴더 이름으로도 쓰입니다.',
    'install.settings': '설정',
    'install.help.port': '1부터 65535까지의 포트 번호.',
    'install.help.integer': '정수.',
    'install.help.secretGenerated': '비밀번호: 비워 두면 무작위로 만듭니다.',
    'install.help.secret': '비밀번호: 비워 두면 쓰지 않습니다.',
    'install.help.secretDefault': '비밀번호: 비워 두면 템플릿의 값을 씁니다.',
    'install.required': '필수',
    'install.on': '사용',
    'install.submit': '설치',
    'install.submitting': '설치를 시작하는 중…',
    'install.progress': '{name} 설치 중',
    'install.state.waiting_for_steamcmd': 'SteamCMD 대기 중 (한 번에 하나씩 설치)',
    'install.state.downloading': '내려받는 중',
    'install.state.configuring': '설정 파일을 쓰는 중',
    'install.state.installed': '설치됨',
    'install.state.failed': '실패',
    'install.bytes': '{total} 중 {done}',
    'install.build': '빌드 {build}',
    'install.done': '{name}을(를) 설치했습니다. 중지된 상태이며 바로 시작할 수 있습니다.',
    'install.openProgram': '{name} 열기',
    'install.failedBody': '남은 파일은 없습니다. 원인을 고친 뒤 다시 설치하세요.',
    'install.failed.java_too_old': 'Minecraft {minecraft}에는 Java {need} 이상이 필요한데 {java}은(는) Java {have}입니다. Java {need}을(를) 설치하거나, warden 설정 파일에서 install.java를 Java {need} 실행 파일 경로로 지정하세요.',
    'install.failed.java_missing': '이 서버를 실행할 Java를 찾지 못했습니다. Java를 설치하거나, warden 설정 파일에서 install.java를 그 실행 파일 경로로 지정하세요.',
    'install.failed.disk_full': '디스크가 가득 찼습니다. 공간을 확보한 뒤 다시 시도하세요.',
    'install.failed.no_subscription': '이 Steam 계정에는 이 서버가 없거나, 다른 계정으로 로그인해야 합니다.',
    'install.failed.steam_guard': 'Steam이 Steam Guard 코드를 요구합니다. 아래에 입력해 다시 설치하세요.',
    'install.failed.login_failed': 'Steam이 로그인을 거부했습니다. 계정 이름과 비밀번호를 확인하세요.',
    'install.failed.rate_limited': 'Steam이 다음 로그인까지 기다리라고 합니다. 나중에 다시 시도하세요.',
    'install.failed.timeout': '내려받기가 너무 오래 걸렸습니다. 네트워크를 확인하고 다시 시도하세요.',
    'install.failed.steamcmd_missing': 'SteamCMD를 실행할 수 없습니다. 설치하거나 warden 설정 파일에서 install.steamcmd를 지정하세요.',
    'install.failed.steamcmd_failed': 'SteamCMD가 실패했습니다. 마지막 출력은 아래에 있습니다.',
    'install.failed.checksum_mismatch': '내려받은 파일이 손상되었습니다(체크섬 불일치). 다시 시도하세요.',
    'install.failed.download_failed': '내려받기에 실패했습니다. 네트워크를 확인하고 다시 시도하세요.',
    'install.failed.unknown_version': '알 수 없는 버전입니다. 다른 버전을 고르세요.',
    'install.failed.write_failed': '파일을 쓸 수 없습니다. 폴더 권한과 남은 공간을 확인하세요.',
    'install.failed.define_failed': '파일은 준비되었지만 프로그램을 만들 수 없었습니다.',
    'install.failed.other': '설치에 실패했습니다 (코드 {code}).',
    'install.again': '다시 시도',
    'install.problems': '데이터 폴더의 템플릿 파일 일부를 쓸 수 없습니다:',
  },
});

const MASK = '********';
const POLL_MS = 400;

function sourceText(source) {
  if (!source) return '';
  if (source.kind === 'steamcmd') return t('install.source.steamcmd', { app: source.app });
  if (source.kind === 'minecraft') return t('install.source.minecraft', { flavor: t(`install.flavor.${source.flavor}`) });
  return t('install.source.url');
}

/** A template's text `field` (`title`, or `description` of the template, a port or a
 * variable) in the user's language: its Korean one (`FIELD_ko`) in Korean mode when it has
 * one, else the English one as written; with the language it is in. */
function textOf(item, field) {
  const ko = currentLang() === 'ko' && item[`${field}_ko`];
  return ko ? { text: ko, lang: 'ko' } : { text: item[field], lang: 'en' };
}

/** The attributes of a [`textOf`] text: its language, and on an English one the user-data
 * mark (the template's words as written, which the Korean page walk skips). */
function marks(text) {
  return { lang: text.lang, 'data-user-data': text.lang === 'en' ? '' : undefined };
}

function TemplateCard({ tpl, onChoose }) {
  const title = textOf(tpl, 'title');
  const about = textOf(tpl, 'description');
  return html`<li class="card template-card" data-template=${tpl.name}>
    <h3 data-template-title ...${marks(title)}>${title.text}</h3>
    <p class="muted small"><code>${tpl.name}</code> · ${sourceText(tpl.source)}
      ${tpl.game_profile && html` · <code>${tpl.game_profile}</code>`}</p>
    <p data-template-description ...${marks(about)}>${about.text}</p>
    ${tpl.ports.length > 0 &&
    html`<p class="small">${t('install.ports')}: ${tpl.ports.map(
      (p, i) => html`${i ? ', ' : ''}<code>${p.port}/${p.protocol}</code>`,
    )}</p>`}
    ${tpl.installable_here
      ? html`<button type="button" class="btn primary" data-choose=${tpl.name}
          aria-label=${t('install.chooseLabel', { title: title.text })} onClick=${() => onChoose(tpl)}>${t('install.choose')}</button>`
      : html`<p class="muted small">${t('install.notHere')} <code>${tpl.systems.join(', ')}</code></p>`}
  </li>`;
}

/** The starting values of the form: defaults, secrets empty (a masked default is kept by omission). */
function initialValues(tpl) {
  const out = {};
  for (const v of tpl.variables) out[v.name] = v.secret ? '' : String(v.default ?? '');
  return out;
}

function helpFor(v) {
  const about = textOf(v, 'description');
  const own = about.text ? html`<span data-variable-description ...${marks(about)}>${about.text}</span>` : null;
  let hint = null;
  if (v.secret) {
    hint = v.default === MASK ? t('install.help.secretDefault') : v.generate ? t('install.help.secretGenerated') : t('install.help.secret');
  } else if (v.type === 'port') hint = t('install.help.port');
  else if (v.type === 'integer') hint = t('install.help.integer');
  if (!own && !hint) return null;
  return html`${hint}${hint && own ? ' ' : ''}${own}`;
}

function VariableField({ v, value, error, onChange }) {
  const id = `iw-v-${v.name}`;
  const label = html`<code>${v.name}</code>${v.required ? html` <span class="muted small">(${t('install.required')})</span>` : ''}`;
  if (v.type === 'boolean') {
    return html`<${Field} id=${id} label=${label} help=${helpFor(v)} error=${error}>
      <label class="check"><input id=${id} type="checkbox" checked=${value === 'true'}
        onChange=${(e) => onChange(e.currentTarget.checked ? 'true' : 'false')} /> ${t('install.on')}</label>
    <//>`;
  }
  const numeric = v.type === 'port' || v.type === 'integer';
  return html`<${Field} id=${id} label=${label} help=${helpFor(v)} error=${error}>
    <input id=${id} type=${v.secret ? 'password' : numeric ? 'number' : 'text'} value=${value}
      inputmode=${numeric ? 'numeric' : undefined} autocomplete=${v.secret ? 'new-password' : 'off'}
      required=${v.required} aria-invalid=${error ? 'true' : undefined}
      aria-describedby=${[error && `${id}-error`, `${id}-help`].filter(Boolean).join(' ')}
      onInput=${(e) => onChange(e.currentTarget.value)} />
  <//>`;
}

function InstallForm({ tpl, onBack, onStarted }) {
  const [name, setName] = useState(tpl.name);
  const [values, setValues] = useState(() => initialValues(tpl));
  const [errors, setErrors] = useState({});
  const [summary, setSummary] = useState(null);
  const [busy, setBusy] = useState(false);
  const title = textOf(tpl, 'title');
  const known = (field) => {
    if (field === 'name') return 'name';
    const m = /^values\.(.+)$/.exec(field || '');
    return m && tpl.variables.some((v) => v.name === m[1]) ? `v-${m[1]}` : null;
  };
  const submit = async (e) => {
    e.preventDefault();
    setErrors({});
    setSummary(null);
    const sent = {};
    for (const v of tpl.variables) {
      const val = values[v.name];
      if (v.secret && val === '') continue;
      if (!v.secret && val === String(v.default ?? '')) continue;
      sent[v.name] = val;
    }
    setBusy(true);
    try {
      const req = { template: tpl.name, name: name.trim(), values: sent };
      const status = await api.post('/api/install', req);
      onStarted(status, req);
    } catch (err) {
      setErrors(errorsByField(err, known));
      setSummary(unplacedErrors(err, known));
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="card" aria-labelledby="iw-form-h" data-install-form=${tpl.name}>
    <div class="toolbar">
      <h2 id="iw-form-h" ...${marks(title)}>${title.text}</h2>
      <span class="grow"></span>
      <button type="button" class="btn" onClick=${onBack}>${t('install.back')}</button>
    </div>
    <form class="builder" noValidate onSubmit=${submit}>
      <${Field} id="iw-name" label=${t('install.name')} help=${t('install.nameHelp')} error=${errors.name}>
        <input id="iw-name" value=${name} autocomplete="off" required aria-invalid=${errors.name ? 'true' : undefined}
          onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <h3>${t('install.settings')}</h3>
      <div class="grid2">
        ${tpl.variables.map(
          (v) => html`<${VariableField} key=${v.name} v=${v} value=${values[v.name]} error=${errors[`v-${v.name}`]}
            onChange=${(val) => setValues((old) => ({ ...old, [v.name]: val }))} />`,
        )}
      </div>
      ${summary && html`<p class="error" role="alert" data-install-error>${summary}</p>`}
      <button type="submit" class="btn primary" disabled=${busy}>${busy ? t('install.submitting') : t('install.submit')}</button>
    </form>
  </section>`;
}

function Progress({ start, onAgain, onGuard }) {
  const [st, setSt] = useState(start);
  const [error, setError] = useState(null);
  const timer = useRef(null);
  const ended = st.state === 'installed' || st.state === 'failed';
  useEffect(() => {
    if (ended) return undefined;
    timer.current = setTimeout(() => {
      api
        .get(`/api/install/${st.id}`)
        .then((s) => {
          setError(null);
          setSt(s);
        })
        .catch((e) => {
          setError(errorText(e));
          setSt((old) => ({ ...old }));
        });
    }, POLL_MS);
    return () => clearTimeout(timer.current);
  }, [st]);
  const pct = st.state === 'installed' ? 100 : Math.max(0, Math.min(100, st.progress?.percent ?? 0));
  const shown = `${fmt.int(Math.floor(pct))} %`;
  const p = st.progress;
  return html`<section class="card" aria-labelledby="iw-progress-h" data-install-progress=${st.id} data-install-state=${st.state}>
    <h2 id="iw-progress-h">${t('install.progress', { name: st.program })}</h2>
    <div class="progress">
      <progress max="100" value=${pct} aria-label=${t('install.progress', { name: st.program })}></progress>
      <span class="num" data-percent=${Math.floor(pct)}>${shown}</span>
      <span data-install-label>${t(`install.state.${st.state}`)}</span>
      ${p && p.bytes_total > 0 && st.state !== 'installed' &&
      html`<span class="muted small num">${t('install.bytes', { done: fmt.bytes(p.bytes_done), total: fmt.bytes(p.bytes_total) })}</span>`}
      ${st.build && html`<span class="muted small">${t('install.build', { build: st.build })}</span>`}
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${st.state === 'installed' &&
    html`<div class="note" role="status">
      <p>${t('install.done', { name: st.program })}</p>
      <a class="btn primary" href=${href.program(st.program)} data-open-program=${st.program}>${t('install.openProgram', { name: st.program })}</a>
    </div>`}
    ${st.state === 'failed' &&
    html`<div class="note error-note" role="alert" data-install-failed=${st.error?.code || ''}>
      ${failureText(st.error) && html`<p data-install-why>${failureText(st.error)}</p>`}
      <p class="reason"><code>${st.error?.message || ''}</code></p>
      ${st.error?.code === 'steam_guard' && onGuard && html`<${GuardForm} id="iw-guard" label=${t('guard.install')} onSubmit=${onGuard} />`}
      <p>${t('install.failedBody')}</p>
      <button type="button" class="btn" onClick=${onAgain}>${t('install.again')}</button>
    </div>`}
  </section>`;
}

/** A sentence in the user's language for a failure's code (the server's English message
 * stays below it, as the details). */
function failureText(err) {
  if (!err) return null;
  if (err.code === 'java_too_old') {
    const m = /Minecraft (\S+) needs Java (\d+); (.+) is Java (\d+)\./.exec(err.message || '');
    if (m) return t('install.failed.java_too_old', { minecraft: m[1], need: m[2], java: m[3], have: m[4] });
  }
  if (err.code === 'java_too_old') return t('install.failed.other', { code: err.code });
  const key = `install.failed.${err.code}`;
  return has(key) ? t(key) : t('install.failed.other', { code: err.code });
}

export function InstallPage() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [chosen, setChosen] = useState(null);
  const [started, setStarted] = useState(null);
  // The last install request, sent again with a Steam Guard code when Steam asks for one.
  const [request, setRequest] = useState(null);
  useEffect(() => {
    if (!can('admin')) return;
    api
      .get('/api/templates')
      .then(setList)
      .catch((e) => setError(errorText(e)));
  }, []);
  if (!can('admin')) return html`<main id="main" tabindex="-1" class="page"><p>${t('common.forbidden')}</p></main>`;
  return html`<main id="main" tabindex="-1" class="page" data-install-page>
    <div class="toolbar">
      <h1>${t('install.title')}</h1>
      <span class="grow"></span>
      <a class="btn" href=${href.overview()}>${t('common.back')}</a>
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${started
      ? html`<${Progress} key=${started.id} start=${started} onAgain=${() => setStarted(null)}
          onGuard=${request && (async (code) => setStarted(await api.post('/api/install', { ...request, guard_code: code })))} />`
      : chosen
        ? html`<${InstallForm} key=${chosen.name} tpl=${chosen} onBack=${() => setChosen(null)}
            onStarted=${(status, req) => {
              setRequest(req);
              setStarted(status);
            }} />`
        : list == null
          ? !error && html`<p class="muted">${t('common.loading')}</p>`
          : html`<section aria-labelledby="iw-pick-h">
              <h2 id="iw-pick-h">${t('install.pick')}</h2>
              ${list.problems.length > 0 &&
              html`<div class="note" role="status"><p>${t('install.problems')}</p>
                <ul>${list.problems.map((p) => html`<li><code>${p.file}: ${p.message}</code></li>`)}</ul></div>`}
              <ul class="template-grid">
                ${list.templates.map((tpl) => html`<${TemplateCard} key=${tpl.name} tpl=${tpl} onChoose=${setChosen} />`)}
              </ul>
            </section>`}
  </main>`;
}
