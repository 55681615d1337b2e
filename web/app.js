// The dashboard's entry point: session check, the shell (header, navigation, live
// status), and the hash router that picks a page.

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './lib/html.js';
import { t, setLang, currentLang, LANGUAGES } from './lib/i18n.js';
import { api, setCsrf, setUnauthorizedHandler } from './lib/api.js';
import { live } from './lib/live.js';
import { allowed, session, can, setSession } from './lib/session.js';
import { followPrograms } from './lib/stores.js';
import { applyTheme, currentTheme } from './lib/theme.js';
import { ConfirmHost, ToastHost, href, useRoute } from './lib/ui.js';
import { Login } from './pages/login.js';
import { Overview } from './pages/overview.js';
import { ProgramPage } from './pages/program.js';
import { ProgramForm } from './pages/form.js';
import { UsersPage } from './pages/users.js';
import { AlertsPage } from './pages/alerts.js';
import { SchedulesPage } from './pages/schedules.js';
import { FilesPage } from './pages/files.js';
import { FleetPage } from './pages/fleet.js';
import { Settings } from './pages/settings.js';
import { About } from './pages/about.js';
import { AuditPage } from './pages/audit.js';
import { InstallPage } from './pages/install.js';
import { ProcessesPage } from './pages/processes.js';

applyTheme(currentTheme());

function LiveStatus() {
  const [status, setStatus] = useState(live.status);
  useEffect(() => {
    // Effects run after paint: the socket may have opened since the first render.
    setStatus(live.status);
    return live.onStatus(setStatus);
  }, []);
  return html`<span class=${`live live-${status}`} data-live=${status} role="status">
    <span class="dot" aria-hidden="true"></span><span class="live-label">${t(`live.${status}`)}</span>
  </span>`;
}

function Nav({ route, onLogout, onLang }) {
  const link = (to, key, active) => html`<a href=${to} aria-current=${active ? 'page' : undefined}>${t(key)}</a>`;
  const first = route.parts[0];
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>${t('app.skip')}</a>
    <a class="brand" href=${href.overview()}>${t('app.name')}</a>
    <nav aria-label=${t('nav.menu')}>
      ${link(href.overview(), 'nav.overview', !first || first === 'p' || first === 'new' || first === 'install')}
      ${link(href.alerts(), 'nav.alerts', first === 'alerts')}
      ${link(href.schedules(), 'nav.schedules', first === 'schedules')}
      ${allowed('view') && link(href.fleet(), 'nav.fleet', first === 'fleet')}
      ${can('admin') && link(href.users(), 'nav.users', first === 'users')}
      ${can('admin') && link(href.audit(), 'nav.audit', first === 'audit')}
      ${can('admin') && link(href.processes(), 'nav.processes', first === 'processes')}
      ${link(href.settings(), 'nav.settings', first === 'settings')}
      ${link(href.about(), 'nav.about', first === 'about')}
    </nav>
    <span class="grow"></span>
    <${LiveStatus} />
    <select class="lang" aria-label=${t('settings.language')} value=${currentLang()}
      onChange=${(e) => onLang(e.currentTarget.value)}>
      ${LANGUAGES.map((l) => html`<option value=${l.code} lang=${l.code}>${l.label}</option>`)}
    </select>
    <span class="who muted">${session.user}</span>
    <button type="button" class="btn" onClick=${onLogout}>${t('nav.logout')}</button>
  </header>`;
}

function Page({ route, onLang, onTheme }) {
  const [a, b, c] = route.parts;
  if (a === 'p' && b && c === 'edit') return html`<${ProgramForm} key=${`edit-${b}`} name=${b} />`;
  if (a === 'p' && b && c === 'files') return html`<${FilesPage} key=${`files-${b}`} name=${b} />`;
  if (a === 'p' && b) return html`<${ProgramPage} key=${b} name=${b} />`;
  if (a === 'new') return html`<${ProgramForm} key="new" />`;
  if (a === 'users') return html`<${UsersPage} />`;
  if (a === 'audit') return html`<${AuditPage} />`;
  if (a === 'processes') return html`<${ProcessesPage} />`;
  if (a === 'install') return html`<${InstallPage} key="install" />`;
  if (a === 'alerts') return html`<${AlertsPage} />`;
  if (a === 'schedules') return html`<${SchedulesPage} />`;
  if (a === 'fleet') return html`<${FleetPage} />`;
  if (a === 'settings') return html`<${Settings} onLang=${onLang} onTheme=${onTheme} />`;
  if (a === 'about') return html`<${About} />`;
  return html`<${Overview} />`;
}

function App() {
  // undefined: checking the session; null: signed out.
  const [me, setMe] = useState(undefined);
  const [expired, setExpired] = useState(false);
  const [, setLangState] = useState(null);
  const [, setThemeState] = useState(null);
  const route = useRoute();

  const signedIn = (m) => {
    setSession(m);
    setCsrf(m.csrf_token);
    setExpired(false);
    setMe(m);
    followPrograms();
    live.start();
  };
  const signedOut = (wasExpired) => {
    live.stop();
    setSession(null);
    setCsrf(null);
    setExpired(wasExpired);
    setMe(null);
  };

  useEffect(() => {
    setUnauthorizedHandler(() => signedOut(true));
    live.onUnauthenticated = () => signedOut(true);
    // The probe answers 200 signed in or out, so a signed-out page logs no failed request.
    api
      .get('/api/auth/session')
      .then((s) => (s.signed_in ? signedIn(s.me) : signedOut(false)))
      .catch(() => signedOut(false));
  }, []);

  const onLang = (code) => {
    setLang(code);
    setLangState(code);
  };
  const onTheme = (theme) => {
    applyTheme(theme);
    setThemeState(theme);
  };
  const logout = async () => {
    try {
      await api.post('/api/auth/logout');
    } finally {
      signedOut(false);
    }
  };

  if (me === undefined) return html`<p class="boot muted">${t('common.loading')}</p>`;
  if (me === null) return html`<${Login} onLogin=${signedIn} expired=${expired} />`;
  return html`<div class="shell">
    <${Nav} route=${route} onLogout=${logout} onLang=${onLang} />
    <${Page} route=${route} onLang=${onLang} onTheme=${onTheme} />
    <${ConfirmHost} />
    <${ToastHost} />
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
