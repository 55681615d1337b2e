// The Steam Guard code Steam asks for when a Steam account logs in from a new place (or
// at every login, with the mobile authenticator): a field and a button that send the same
// install or update again with `guard_code`.

import { useState } from 'preact/hooks';
import { html } from './html.js';
import { addStrings, t } from './i18n.js';
import { errorText, Field } from './ui.js';

addStrings({
  en: {
    'guard.code': 'Steam Guard code',
    'guard.help': 'The code Steam sent by e-mail or shows in the Steam app.',
    'guard.install': 'Install with this code',
    'guard.update': 'Update with this code',
  },
  ko: {
    'guard.code': 'Steam Guard 코드',
    'guard.help': 'Steam이 메일로 보냈거나 Steam 앱에 보이는 코드입니다.',
    'guard.install': '이 코드로 설치',
    'guard.update': '이 코드로 업데이트',
  },
});

/** The code field; `onSubmit(code)` sends the request again (its error is shown here). */
export function GuardForm({ id, label, onSubmit }) {
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSubmit(code.trim());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="row" noValidate onSubmit=${submit} data-guard-form>
    <${Field} id=${id} label=${t('guard.code')} help=${t('guard.help')} error=${error}>
      <input id=${id} value=${code} autocomplete="one-time-code" spellcheck="false" required
        aria-invalid=${error ? 'true' : undefined} onInput=${(e) => setCode(e.currentTarget.value)} />
    <//>
    <button type="submit" class="btn primary" disabled=${busy || !code.trim()} data-guard-submit>${label}</button>
  </form>`;
}
