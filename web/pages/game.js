// A game server's panel on its program page: health from the liveness checks, players
// (live count, names on request), broadcast, save (the profile's command over RCON or the
// console), and stop/restart with warnings to players or only when nobody is online.

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { allowed } from '../lib/session.js';
import { gameProfiles } from '../lib/games.js';
import { refreshProgram } from '../lib/stores.js';
import { ACTIVE, confirmAction, errorText, Field, OutcomeBadge, toast, toastError } from '../lib/ui.js';

function Health({ status }) {
  if (!status) return html`<p class="muted small">${t('game.noStatus')}</p>`;
  return html`<dl class="facts" data-health=${status.health}>
    <div><dt>${t('game.health')}</dt><dd><${OutcomeBadge} status=${status.health} /></dd></div>
    <div><dt>${t('game.failures')}</dt><dd class="num">${fmt.int(status.failures)}</dd></div>
    <div><dt>${t('game.checked')}</dt><dd class="num">${fmt.time(status.checked_ms)}</dd></div>
    <div><dt>${t('col.players')}</dt><dd class="num" data-players-count>${status.players == null
      ? t('common.none')
      : status.max_players != null
        ? `${fmt.int(status.players)} / ${fmt.int(status.max_players)}`
        : fmt.int(status.players)}</dd></div>
    ${status.message && html`<div class="wide"><dt>${t('game.lastError')}</dt><dd class="error">${status.message}</dd></div>`}
  </dl>`;
}

function Players({ name }) {
  const [info, setInfo] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = async () => {
    setBusy(true);
    try {
      setInfo(await api.get(`/api/programs/${seg(name)}/players`));
    } catch (e) {
      toastError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="sub" data-players>
    <div class="row">
      <button type="button" class="btn" data-load-players disabled=${busy} onClick=${load}>${t('game.players.load')}</button>
      ${info && html`<span class="small num">${t('game.players.online', { n: fmt.int(info.online), max: info.max == null ? '?' : fmt.int(info.max) })}</span>`}
    </div>
    ${info &&
    (info.names.length
      ? html`<ul class="inline-list" data-player-names>${info.names.map((n) => html`<li key=${n}>${n}</li>`)}</ul>`
      : html`<p class="muted small">${t('game.players.none')}</p>`)}
  </div>`;
}

function Broadcast({ name }) {
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const send = async (e) => {
    e.preventDefault();
    if (!message.trim()) return;
    setBusy(true);
    try {
      await api.post(`/api/programs/${seg(name)}/broadcast`, { message });
      toast(t('game.broadcast.sent'));
      setMessage('');
    } catch (err) {
      toastError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="command" onSubmit=${send} data-broadcast>
    <label for="broadcast-input" class="sr-only">${t('game.broadcast')}</label>
    <input id="broadcast-input" autocomplete="off" value=${message} placeholder=${t('game.broadcast.placeholder')}
      onInput=${(e) => setMessage(e.currentTarget.value)} />
    <button type="submit" class="btn primary" disabled=${busy}>${t('game.broadcast')}</button>
  </form>`;
}

/** The save command this program can use: over RCON when it has RCON, else its console. */
function saveMethod(game, info) {
  if (!info) return null;
  if (game.rcon && info.save_rcon) return { via: 'rcon', command: info.save_rcon };
  if (info.save_stdin) return { via: 'stdin', command: info.save_stdin };
  return null;
}

function SaveButton({ name, game, running }) {
  const [method, setMethod] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    gameProfiles()
      .then((all) => setMethod(saveMethod(game, all[game.profile])))
      .catch(toastError);
  }, [game]);
  if (!method) return null;
  const save = async () => {
    setBusy(true);
    try {
      if (method.via === 'rcon') await api.post(`/api/programs/${seg(name)}/rcon`, { command: method.command });
      else await api.post(`/api/programs/${seg(name)}/console`, { line: method.command });
      toast(t('game.saved'));
    } catch (e) {
      toastError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class="btn" data-save disabled=${busy || !running} onClick=${save}
    title=${`${method.via}: ${method.command}`}>${t('game.save')}</button>`;
}

function WarnedStop({ p }) {
  const [action, setAction] = useState('restart');
  const [warn, setWarn] = useState('300, 60, 10');
  const [empty, setEmpty] = useState(false);
  const [error, setError] = useState(null);
  const [plan, setPlan] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const secs = warn
      .split(/[,\s]+/)
      .filter(Boolean);
    if (secs.some((s) => !/^\d+$/.test(s))) {
      setError(t('game.warn.bad'));
      return;
    }
    if (!secs.length && !empty) {
      setError(t('game.warn.none'));
      return;
    }
    setError(null);
    const ok = await confirmAction({
      title: t(`confirm.${action}.title`, { name: p.name }),
      body: secs.length ? t('game.warn.body', { s: secs.join(', ') }) : t(`confirm.${action}.body`),
      action: t(`action.${action}`),
    });
    if (!ok) return;
    const q = new URLSearchParams();
    if (secs.length) q.set('warn', secs.join(','));
    if (empty) q.set('only_when_empty', 'true');
    try {
      const r = await api.post(`/api/programs/${seg(p.name)}/${action}?${q}`);
      if (r && r.at_ms) setPlan(r);
      await refreshProgram(p.name);
    } catch (err) {
      if (err.code === 'players_online') setError(errorText(err));
      else toastError(err);
    }
  };
  return html`<form class="inline-form" onSubmit=${submit} data-warned-stop>
    <h3>${t('game.warn.title')}</h3>
    <div class="grid2">
      <${Field} id="ws-action" label=${t('game.warn.action')}>
        <select id="ws-action" value=${action} onChange=${(e) => setAction(e.currentTarget.value)}>
          <option value="restart">${t('action.restart')}</option>
          <option value="stop">${t('action.stop')}</option>
        </select>
      <//>
      <${Field} id="ws-warn" label=${t('game.warn.seconds')} help=${t('game.warn.help')} error=${error}>
        <input id="ws-warn" inputmode="numeric" value=${warn} onInput=${(e) => setWarn(e.currentTarget.value)} />
      <//>
    </div>
    <label class="check"><input type="checkbox" checked=${empty} onChange=${(e) => setEmpty(e.currentTarget.checked)} /> ${t('game.warn.empty')}</label>
    <button type="submit" class="btn" disabled=${!ACTIVE.has(p.state)}>${t(`action.${action}`)}</button>
    ${plan && html`<p class="small muted" role="status" data-stop-plan>${t('game.warn.plan', { at: fmt.time(plan.at_ms) })}</p>`}
  </form>`;
}

export function GamePanel({ p }) {
  const operator = allowed('players', p.name);
  const running = p.state === 'running';
  return html`<section class="card" aria-labelledby="game-h" data-game=${p.game.profile}>
    <div class="toolbar">
      <h2 id="game-h">${t('game.title')}</h2>
      <span class="muted small">${t(`profile.${p.game.profile}`)}</span>
      <span class="grow"></span>
      ${operator && html`<${SaveButton} name=${p.name} game=${p.game} running=${running} />`}
    </div>
    <${Health} status=${p.game_status} />
    <${Players} name=${p.name} />
    ${operator && html`<${Broadcast} name=${p.name} />`}
    ${operator && html`<${WarnedStop} p=${p} />`}
  </section>`;
}
