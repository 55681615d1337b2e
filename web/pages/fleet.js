// The fleet: this warden's programs and every fleet node's, one card per machine, read
// from `GET /api/fleet/programs`. A node's state changes come live through the hub's
// WebSocket (`node:NODE:programs`); a node the hub loses is marked unreachable at once and
// refetched when it is back. A node's program is started, stopped and restarted, and its
// console watched and typed into, through the hub (`/api/fleet/nodes/…`), which checks
// the user's own permissions first.

import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { addStrings, fmt, t } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { live } from '../lib/live.js';
import { allowed } from '../lib/session.js';
import { ACTIVE, confirmAction, errorText, href, StateBadge, toastError } from '../lib/ui.js';

addStrings({
  en: {
    'fleet.title': 'Machines',
    'fleet.intro': 'This warden and the other wardens it knows as fleet nodes.',
    'fleet.none': 'This warden knows no other machines yet. To add one, make a token for this warden on the other machine:',
    'fleet.noneThen': 'then give it to this warden with the other machine’s address:',
    'fleet.here': 'this machine',
    'fleet.reachable': 'Connected',
    'fleet.unreachable': 'Unreachable',
    'fleet.lastSeen': 'last answered {when}',
    'fleet.neverSeen': 'has not answered since warden started',
    'fleet.programs': '{n} programs',
    'fleet.program1': '1 program',
    'fleet.empty': 'No programs on this machine.',
    'fleet.console': 'Console',
    'fleet.consoleOf': 'Console of {name} on {node}',
    'fleet.consoleWaiting': 'Waiting for output…',
    'fleet.send': 'Send',
    'fleet.line': 'Command',
    'fleet.forbidden': 'Seeing every machine needs the view permission on every program.',
  },
  ko: {
    'fleet.title': '머신',
    'fleet.intro': '이 warden과, 이 warden이 플릿 노드로 알고 있는 다른 warden들입니다.',
    'fleet.none': '아직 다른 머신이 없습니다. 추가하려면 다른 머신에서 이 warden이 쓸 토큰을 만들고:',
    'fleet.noneThen': '그 머신의 주소와 함께 이 warden에 알려 주세요:',
    'fleet.here': '이 머신',
    'fleet.reachable': '연결됨',
    'fleet.unreachable': '연결할 수 없음',
    'fleet.lastSeen': '마지막 응답 {when}',
    'fleet.neverSeen': 'warden 시작 후 응답한 적 없음',
    'fleet.programs': '프로그램 {n}개',
    'fleet.program1': '프로그램 1개',
    'fleet.empty': '이 머신에는 프로그램이 없습니다.',
    'fleet.console': '콘솔',
    'fleet.consoleOf': '{node}의 {name} 콘솔',
    'fleet.consoleWaiting': '출력을 기다리는 중…',
    'fleet.send': '보내기',
    'fleet.line': '명령',
    'fleet.forbidden': '모든 머신을 보려면 모든 프로그램에 대한 보기 권한이 필요합니다.',
  },
});

// Commands shown as they are typed (held here: a `<` in the template would be markup).
const ADD_TOKEN = 'warden token create hub --role operator';
const ADD_NODE = 'warden fleet add box2 https://box2.example:9180/ < hub-token.txt';

/** How often the whole overview is read again besides live updates. */
const REFRESH_MS = 30000;
/** Console lines kept per open console. */
const CONSOLE_LINES = 200;

const nodePath = (node, name, what) =>
  `/api/fleet/nodes/${seg(node)}/programs/${seg(name)}/${what}`;

/** Start/stop/restart of a node's program through the hub, asking first for stop/restart. */
async function nodeAction(node, name, action) {
  if (action !== 'start') {
    const ok = await confirmAction({
      title: t(`confirm.${action}.title`, { name }),
      body: t(`confirm.${action}.body`),
      action: t(`action.${action}`),
    });
    if (!ok) return;
  }
  try {
    await api.post(nodePath(node, name, action));
  } catch (e) {
    toastError(e);
  }
}

/** The live console of a node's program: lines through the hub, input through the hub. */
function RemoteConsole({ node, name }) {
  const [lines, setLines] = useState([]);
  const [line, setLine] = useState('');
  const box = useRef(null);
  useEffect(
    () =>
      live.subscribe(`node:${node}:console:${name}`, (msg) => {
        if (msg.type !== 'console') return;
        setLines((old) => [...old.slice(-(CONSOLE_LINES - 1)), msg]);
      }),
    [node, name],
  );
  useEffect(() => {
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines]);
  const send = async (e) => {
    e.preventDefault();
    if (!line.trim()) return;
    try {
      await api.post(nodePath(node, name, 'console'), { line });
      setLine('');
    } catch (err) {
      toastError(err);
    }
  };
  const id = `fc-${node}-${name}`;
  return html`<div class="fleet-console" data-fleet-console=${`${node}/${name}`}>
    <div class="console" ref=${box} role="log" aria-label=${t('fleet.consoleOf', { node, name })}>
      ${lines.length
        ? lines.map((l, i) => html`<div key=${i} class=${`line ${l.stream || ''}`}>${l.text}</div>`)
        : html`<p class="muted">${t('fleet.consoleWaiting')}</p>`}
    </div>
    <form class="command" onSubmit=${send}>
      <label class="sr-only" for=${id}>${t('fleet.line')}</label>
      <input id=${id} autocomplete="off" spellcheck="false" value=${line}
        placeholder=${t('fleet.line')} onInput=${(e) => setLine(e.currentTarget.value)} />
      <button type="submit" class="btn primary">${t('fleet.send')}</button>
    </form>
  </div>`;
}

function ProgramLine({ node, here, p }) {
  const [open, setOpen] = useState(false);
  const active = ACTIVE.has(p.state);
  const act = (action) => html`<button type="button" class="btn" data-action=${action}
      aria-label=${`${t(`action.${action}`)} ${p.name}`}
      onClick=${() => nodeAction(node, p.name, action)}>${t(`action.${action}`)}</button>`;
  return html`<div role="row" class="prow" data-node=${node} data-program=${p.name}>
      <div role="cell" class="c-state"><${StateBadge} state=${p.state} /></div>
      <div role="cell" class="c-name">
        ${here ? html`<a href=${href.program(p.name)}>${p.display_name || p.name}</a>` : p.display_name || p.name}
        ${p.display_name && html`<small class="muted">${p.name}</small>`}
      </div>
      <div role="cell" class="c-restarts num" data-label=${t('col.restarts')}>${fmt.int(p.restarts)}</div>
      <div role="cell" class="c-actions">
        ${!here && allowed('control', p.name) &&
        html`<div class="actions">${active ? [act('stop'), act('restart')] : act('start')}</div>`}
        ${!here && allowed('console', p.name) &&
        html`<button type="button" class="btn" data-open-console aria-expanded=${open}
          onClick=${() => setOpen(!open)}>${t('fleet.console')}</button>`}
      </div>
    </div>
    ${open && html`<${RemoteConsole} node=${node} name=${p.name} />`}`;
}

function NodeCard({ status, here, programs, live: liveState }) {
  const node = status.node;
  const down = liveState ? liveState.state === 'unreachable' : status.unreachable;
  const why = (liveState && liveState.error) || status.error;
  const count = programs.length === 1 ? t('fleet.program1') : t('fleet.programs', { n: fmt.int(programs.length) });
  return html`<section class="card fleet-node" data-fleet-node=${node} data-reachable=${down ? 'no' : 'yes'}
      aria-labelledby=${`fn-${node}`}>
    <div class="toolbar">
      <h2 id=${`fn-${node}`} data-user-data>${node}</h2>
      ${here && html`<span class="muted">${t('fleet.here')}</span>`}
      <span class=${down ? 'badge state-fatal' : 'badge state-running'} data-node-status>
        <span class="dot" aria-hidden="true"></span>${t(down ? 'fleet.unreachable' : 'fleet.reachable')}
      </span>
      <span class="muted">${count}</span>
    </div>
    ${down &&
    html`<p class="muted" data-node-why>
      ${status.last_seen_ms
        ? t('fleet.lastSeen', { when: fmt.time(status.last_seen_ms) })
        : t('fleet.neverSeen')}${why ? ` — ${why}` : ''}
    </p>`}
    ${programs.length === 0
      ? !down && html`<p class="empty">${t('fleet.empty')}</p>`
      : html`<div class="programs" role="table" aria-labelledby=${`fn-${node}`}>
          <div role="row" class="prow head">
            <span role="columnheader" class="c-state">${t('col.state')}</span>
            <span role="columnheader" class="c-name">${t('col.name')}</span>
            <span role="columnheader" class="c-restarts">${t('col.restarts')}</span>
            <span role="columnheader" class="c-actions">${t('col.actions')}</span>
          </div>
          ${programs.map((p) => html`<${ProgramLine} key=${p.name} node=${node} here=${here} p=${p} />`)}
        </div>`}
  </section>`;
}

export function FleetPage() {
  const [data, setData] = useState(null);
  const [failed, setFailed] = useState(null);
  // Per node: the last `{"type":"node"}` message of its live feed.
  const [links, setLinks] = useState({});
  const load = () =>
    api.get('/api/fleet/programs').then(
      (d) => {
        setData(d);
        setLinks({});
      },
      (e) => setFailed(e),
    );
  useEffect(() => {
    load();
    const timer = setInterval(load, REFRESH_MS);
    const off = live.onResync(load);
    return () => {
      clearInterval(timer);
      off();
    };
  }, []);
  const remote = data ? data.nodes.slice(1).map((n) => n.node) : [];
  useEffect(() => {
    const offs = remote.map((node) =>
      live.subscribe(`node:${node}:programs`, (msg) => {
        if (msg.type === 'node') {
          setLinks((l) => ({ ...l, [node]: msg }));
          if (msg.state === 'connected') load();
        } else if (msg.type === 'state') {
          setData((d) => d && {
            ...d,
            programs: d.programs.map((p) =>
              p.node === node && p.name === msg.program ? { ...p, state: msg.to } : p),
          });
        } else if (msg.type === 'program') {
          load();
        }
      }),
    );
    return () => offs.forEach((off) => off());
  }, [remote.join(' ')]);

  if (failed) {
    return html`<main id="main" tabindex="-1" class="page"><section class="card">
      <h1>${t('fleet.title')}</h1>
      <p class="empty">${failed.status === 403 ? t('fleet.forbidden') : errorText(failed)}</p>
    </section></main>`;
  }
  return html`<main id="main" tabindex="-1" class="page" data-fleet>
    <section class="card">
      <h1>${t('fleet.title')}</h1>
      <p class="muted">${t('fleet.intro')}</p>
      ${data && data.nodes.length === 1 && html`<div data-fleet-none>
        <p>${t('fleet.none')}</p>
        <pre class="wrap"><code>${ADD_TOKEN}</code></pre>
        <p>${t('fleet.noneThen')}</p>
        <pre class="wrap"><code>${ADD_NODE}</code></pre>
      </div>`}
    </section>
    ${data == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : data.nodes.map((status, i) => html`<${NodeCard} key=${status.node} status=${status} here=${i === 0}
          live=${links[status.node]} programs=${data.programs.filter((p) => p.node === status.node)} />`)}
  </main>`;
}
