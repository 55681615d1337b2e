// Why a program failed, in the user's language: the API sends `reason` as stable codes
// (`spawn_failed` with a cause and the command or folder, `gave_up`); this turns them
// into a sentence. The server's English `message` is only the fallback for codes this
// dashboard does not know yet.

import { html } from './html.js';
import { addStrings, t } from './i18n.js';

addStrings({
  en: {
    'reason.spawn_failed.command_not_found': 'Command not found: {subject}',
    'reason.spawn_failed.not_executable': 'Command not executable: {subject}',
    'reason.spawn_failed.cwd_missing': 'Working folder missing: {subject}',
    'reason.spawn_failed.limits': 'Its resource limits could not be applied ({subject})',
    'reason.spawn_failed.other': 'Could not start {subject}',
    'reason.spawn_failed.runs_as_root': 'Refused to run as root: set a user for it, or allow_root if it must run as root',
    'reason.spawn_failed.run_as': 'Cannot run it as user {subject}',
    'reason.gave_up': 'Gave up after repeated failures; start it again when fixed',
    'program.neverStarted': 'Never started',
  },
  ko: {
    'reason.spawn_failed.command_not_found': '명령을 찾을 수 없음: {subject}',
    'reason.spawn_failed.not_executable': '실행할 수 없는 명령: {subject}',
    'reason.spawn_failed.cwd_missing': '작업 폴더 없음: {subject}',
    'reason.spawn_failed.limits': '자원 제한을 적용할 수 없음 ({subject})',
    'reason.spawn_failed.other': '{subject}을(를) 시작할 수 없음',
    'reason.spawn_failed.runs_as_root': '루트 권한으로 실행하지 않음: 실행할 사용자(user)를 지정하거나, 꼭 루트 권한이어야 하면 allow_root를 켜세요',
    'reason.spawn_failed.run_as': '사용자 {subject}(으)로 실행할 수 없음',
    'reason.gave_up': '실패가 반복되어 재시작을 중단함. 문제를 고친 뒤 다시 시작하세요',
    'program.neverStarted': '시작되지 않음',
  },
});

/** The sentence for a program's `reason`, or null without one. */
export function reasonText(reason) {
  if (!reason) return null;
  const key = reason.cause ? `reason.${reason.code}.${reason.cause}` : `reason.${reason.code}`;
  const s = t(key, { subject: reason.subject || '' });
  return s === key ? reason.message : s;
}

/** The reason as a short line under a state badge (nothing without a reason). */
export function Reason({ reason }) {
  const text = reasonText(reason);
  return text ? html`<small class="reason" data-reason=${reason.code} role="note">${text}</small>` : null;
}
