// Users and API tokens (administrators only).

import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { t, fmt } from '../lib/i18n.js';
import { api, seg } from '../lib/api.js';
import { can, session } from '../lib/session.js';
import { confirmAction, copyText, errorText, Field, toast, toastError } from '../lib/ui.js';

const ROLES = ['viewer', 'operator', 'admin'];

function RoleSelect({ id, value, onChange }) {
  return html`<select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
    ${ROLES.map((r) => html`<option value=${r}>${t(`role.${r}`)}</option>`)}
  </select>`;
}

function Users() {
  const [users, setUsers] = useState(null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('viewer');
  const [error, setError] = useState(null);
  const [pwFor, setPwFor] = useState(null);
  const [newPw, setNewPw] = useState('');

  const load = () => api.get('/api/users').then(setUsers).catch(toastError);
  useEffect(() => {
    load();
  }, []);

  const add = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await api.post('/api/users', { name: name.trim(), password, role });
      toast(t('users.added', { name: name.trim() }));
      setName('');
      setPassword('');
      load();
    } catch (err) {
      setError(errorText(err));
    }
  };

  const remove = async (u) => {
    const ok = await confirmAction({
      title: t('users.delete.title', { name: u.name }),
      body: t('users.delete.body'),
      action: t('common.delete'),
    });
    if (!ok) return;
    api.del(`/api/users/${seg(u.name)}`).then(load).catch(toastError);
  };

  const savePassword = async (e) => {
    e.preventDefault();
    try {
      await api.put(`/api/users/${seg(pwFor)}/password`, { password: newPw });
      toast(t('users.passwordSet'));
      setPwFor(null);
      setNewPw('');
    } catch (err) {
      toastError(err);
    }
  };

  return html`<section class="card" aria-labelledby="users-h">
    <h2 id="users-h">${t('users.title')}</h2>
    <div class="table-wrap">
      <table>
        <thead><tr><th>${t('users.name')}</th><th>${t('users.role')}</th><th>${t('users.created')}</th><th><span class="sr-only">${t('col.actions')}</span></th></tr></thead>
        <tbody>
          ${(users || []).map(
            (u) => html`<tr key=${u.name}>
              <td>${u.name} ${u.name === session.user && html`<span class="muted">(${t('users.you')})</span>`}</td>
              <td>${t(`role.${u.role}`)}</td>
              <td class="num">${fmt.time(u.created_ms)}</td>
              <td><div class="row end">
                <button type="button" class="btn" onClick=${() => setPwFor(u.name)}>${t('users.setPassword')}</button>
                ${u.name !== session.user &&
                html`<button type="button" class="btn danger" onClick=${() => remove(u)}>${t('common.delete')}</button>`}
              </div></td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${pwFor &&
    html`<form class="inline-form" onSubmit=${savePassword}>
      <${Field} id="pw-new" label=${t('users.newPassword', { name: pwFor })} help=${t('users.passwordHelpReset')}>
        <input id="pw-new" type="password" autocomplete="new-password" required minlength="8" autofocus
          value=${newPw} onInput=${(e) => setNewPw(e.currentTarget.value)} />
      <//>
      <div class="row">
        <button type="submit" class="btn primary">${t('common.save')}</button>
        <button type="button" class="btn" onClick=${() => setPwFor(null)}>${t('common.cancel')}</button>
      </div>
    </form>`}
    <form class="inline-form" onSubmit=${add}>
      <h3>${t('users.add')}</h3>
      <${Field} id="nu-name" label=${t('users.name')}>
        <input id="nu-name" autocomplete="off" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${Field} id="nu-password" label=${t('users.password')} help=${t('users.passwordHelp')}>
        <input id="nu-password" type="password" autocomplete="new-password" required minlength="8"
          value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} />
      <//>
      <${Field} id="nu-role" label=${t('users.role')}>
        <${RoleSelect} id="nu-role" value=${role} onChange=${setRole} />
      <//>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit" class="btn primary">${t('users.add')}</button>
    </form>
  </section>`;
}

function Tokens() {
  const [tokens, setTokens] = useState(null);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [secret, setSecret] = useState(null);
  const [error, setError] = useState(null);

  const load = () => api.get('/api/tokens').then(setTokens).catch(toastError);
  useEffect(() => {
    load();
  }, []);

  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const r = await api.post('/api/tokens', { name: name.trim(), role });
      setSecret(r.token);
      setName('');
      load();
    } catch (err) {
      setError(errorText(err));
    }
  };

  const revoke = async (tk) => {
    const ok = await confirmAction({
      title: t('tokens.revoke.title', { name: tk.name }),
      body: t('tokens.revoke.body'),
      action: t('tokens.revoke'),
    });
    if (!ok) return;
    api.del(`/api/tokens/${tk.id}`).then(load).catch(toastError);
  };

  return html`<section class="card" aria-labelledby="tokens-h">
    <h2 id="tokens-h">${t('tokens.title')}</h2>
    <div class="table-wrap">
      <table>
        <thead><tr>
          <th>${t('tokens.name')}</th><th>${t('tokens.role')}</th><th>${t('tokens.created')}</th>
          <th>${t('tokens.lastUsed')}</th><th>${t('tokens.state')}</th><th><span class="sr-only">${t('col.actions')}</span></th>
        </tr></thead>
        <tbody>
          ${(tokens || []).map(
            (tk) => html`<tr key=${tk.id}>
              <td>${tk.name} <code class="muted">${tk.public_id}</code></td>
              <td>${t(`role.${tk.role}`)}</td>
              <td class="num">${fmt.time(tk.created_ms)}</td>
              <td class="num">${fmt.time(tk.last_used_ms)}</td>
              <td>${tk.revoked_ms ? t('tokens.revoked') : t('tokens.active')}</td>
              <td><div class="row end">${!tk.revoked_ms &&
              html`<button type="button" class="btn danger" onClick=${() => revoke(tk)}>${t('tokens.revoke')}</button>`}</div></td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${secret &&
    html`<div class="note" role="status">
      <p>${t('tokens.secret')}</p>
      <div class="row"><code class="secret">${secret}</code>
        <button type="button" class="btn" onClick=${() => copyText(secret).then(() => toast(t('common.copied')))}>${t('common.copy')}</button>
        <button type="button" class="btn" onClick=${() => setSecret(null)}>${t('common.close')}</button>
      </div>
    </div>`}
    <form class="inline-form" onSubmit=${create}>
      <h3>${t('tokens.create')}</h3>
      <${Field} id="nt-name" label=${t('tokens.name')}>
        <input id="nt-name" autocomplete="off" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${Field} id="nt-role" label=${t('tokens.role')}>
        <${RoleSelect} id="nt-role" value=${role} onChange=${setRole} />
      <//>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit" class="btn primary">${t('tokens.create')}</button>
    </form>
  </section>`;
}

export function UsersPage() {
  if (!can('admin')) return html`<main id="main" tabindex="-1" class="page"><p>${t('common.forbidden')}</p></main>`;
  return html`<main id="main" tabindex="-1" class="page">
    <h1>${t('nav.users')}</h1>
    <${Users} />
    <${Tokens} />
  </main>`;
}
