// Game profiles as the server defines them (`GET /api/games/profiles`): defaults for the
// program form and the save command for the program page. Fetched once per session.

import { api } from './api.js';

let cached = null;

/** Resolves to `{profile: info}` for every profile. */
export function gameProfiles() {
  if (!cached) {
    cached = api
      .get('/api/games/profiles')
      .then((r) => Object.fromEntries(r.profiles.map((p) => [p.profile, p])))
      .catch((e) => {
        cached = null;
        throw e;
      });
  }
  return cached;
}

/** A stop step (`{"rcon": "save-all"}`, `"rest_save"`…) in words. */
export function describeStep(step) {
  if (typeof step === 'string') return step.replace('_', ' ');
  const [kind, value] = Object.entries(step)[0];
  return typeof value === 'string' ? `${kind}: ${value}` : kind.replace('_', ' ');
}
