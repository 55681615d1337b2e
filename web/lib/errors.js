// The API's errors in the user's language. The server sends stable codes and the values
// their sentences need (`params`); its English `message` is for the CLI and curl and is
// never shown here. An unknown code reads as a generic sentence naming the code.

import { has, t } from './i18n.js';

/** Params as the sentences want them: lists joined, states in words. */
function words(params) {
  const out = {};
  for (const [k, v] of Object.entries(params || {})) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** One 422 detail (`{field, code, params}`) as a sentence. */
export function fieldText(d) {
  const p = words(d.params);
  const code = d.code || 'unknown';
  if (code === 'invalid' && p.value == null) return t('field.invalid.bare');
  if (code === 'unreadable') {
    p.at = p.line == null ? '' : t(p.column == null ? 'field.at.line' : 'field.at.column', p);
  }
  const key = `field.${code}`;
  return has(key) ? t(key, p) : t('field.unknown', { code });
}

/** Any failed request (an ApiError from lib/api.js, or anything thrown) as a sentence. */
export function errorText(err) {
  if (!err) return '';
  if (err.status === 0 || err.code === 'network') return t('error.network');
  if (!err.code || err.code === 'http_error') return t('error.unknown', { code: err.status || err.name || '?' });
  const p = words(err.params);
  if (err.code === 'validation_failed' && err.details && err.details.length) {
    return err.details.map((d) => `${d.field}: ${fieldText(d)}`).join(' · ');
  }
  if (err.code === 'not_found' && p.name) return t('error.not_found.named', p);
  if (err.code === 'forbidden') return t('error.forbidden.plain');
  if (p.state) p.state = t(`state.${p.state}`).toLowerCase();
  const key = `error.${err.code}`;
  return has(key) ? t(key, p) : t('error.unknown', { code: err.code });
}
