// Who is signed in, and what the interface offers them. The server enforces every role
// check anyway; hiding buttons only spares people errors.

const RANK = { viewer: 0, operator: 1, admin: 2 };

export const session = { user: null, role: null };

/** True when the signed-in user has at least `role`. */
export function can(role) {
  return session.role != null && RANK[session.role] >= RANK[role];
}
