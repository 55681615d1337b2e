// Who is signed in, and what the interface offers them. The server enforces every
// permission anyway; hiding buttons only spares people errors.

const RANK = { none: -1, viewer: 0, operator: 1, admin: 2 };

// `everywhere`: the permissions held on every program; `programs`: the full set on each
// program where it differs (grants on one program or a tag), as `/api/auth/me` gives them.
export const session = { user: null, role: null, everywhere: [], programs: {} };

/** Remembers who signed in (the answer of `/api/auth/me` or the login). */
export function setSession(me) {
  session.user = me ? me.user : null;
  session.role = me ? me.role : null;
  session.everywhere = (me && me.everywhere) || [];
  session.programs = (me && me.programs) || {};
}

/** True when the signed-in user holds permission `perm` (`view`, `console`, `control`,
 *  `players`, `files.read`, `files.write`, `backups`, `backups.restore`, `schedules`,
 *  `define`) on program `name`. */
export function allowed(perm, name) {
  if (session.role === 'admin') return true;
  const perms = (name && session.programs[name]) || session.everywhere;
  return perms.includes(perm);
}

/** True when the signed-in user has at least `role`. */
export function can(role) {
  return session.role != null && RANK[session.role] >= RANK[role];
}
