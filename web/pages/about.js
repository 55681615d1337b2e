// About this warden: versions, data directory, uptime, and the third-party licences.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { api } from '../lib/api.js';
import { toastError, Uptime } from '../lib/ui.js';

const LICENCES = [
  ['Preact 11.2.0', 'preact.LICENSE'],
  ['htm 3.1.1', 'htm.LICENSE'],
  ['uPlot 1.6.32', 'uplot.LICENSE'],
];

export function About() {
  const [about, setAbout] = useState(null);
  const [startedAt, setStartedAt] = useState(null);
  useEffect(() => {
    api
      .get('/api/system/about')
      .then((a) => {
        setAbout(a);
        setStartedAt(Date.now() - a.uptime_seconds * 1000);
      })
      .catch(toastError);
  }, []);
  const licenceBase = new URL('../vendor/LICENSES/', import.meta.url).pathname;
  return html`<main id="main" tabindex="-1" class="page narrow">
    <h1>${t('about.title')}</h1>
    <section class="card">
      ${about == null
        ? html`<p class="muted">${t('common.loading')}</p>`
        : html`<dl class="facts wide">
            <div><dt>${t('about.version')}</dt><dd data-version>${about.version}</dd></div>
            <div><dt>${t('about.web')}</dt><dd><code>${about.web_version}</code></dd></div>
            <div><dt>${t('about.dataDir')}</dt><dd><code>${about.data_dir}</code></dd></div>
            <div><dt>${t('about.uptime')}</dt><dd><${Uptime} startedAt=${startedAt} /></dd></div>
            <div><dt>${t('about.started')}</dt><dd class="num">${fmt.time(about.started_ms)}</dd></div>
            <div><dt>${t('about.platform')}</dt><dd data-user-data>${about.os} / ${about.arch}</dd></div>
            <div><dt>${t('about.pid')}</dt><dd class="num">${about.pid}</dd></div>
            <div><dt>${t('about.api')}</dt><dd><a href="/api/openapi.json">/api/openapi.json</a></dd></div>
          </dl>`}
    </section>
    <section class="card">
      <h2>${t('about.licences')}</h2>
      <ul>
        ${LICENCES.map(([label, file]) => html`<li><a href=${licenceBase + file}>${label}</a></li>`)}
      </ul>
    </section>
  </main>`;
}
