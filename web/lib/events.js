// Events as sentences in the user's language. The server stores each event with a stable
// `kind` and its `data` (a state change's from/to/reason/exit, a backup's id and sizes, a
// job's run and duration); this module turns those into "Backup 3 finished: 1.2 GiB in
// 6 s" or "백업 3 완료: 1.2 GiB, 6초". The English `message` is only the fallback for a
// kind this dashboard does not know yet.
//
// A state change's reason is English text from the lifecycle; the known shapes are
// recognised here (one table), so "stop requested" reads as a stop, and the exit of a
// requested stop (SIGTERM) is never shown as a kill.

import { addStrings, fmt, t } from './i18n.js';
import { reasonText } from './reasons.js';

addStrings({
  en: {
    'ev.kind.state': 'State',
    'ev.kind.program': 'Program',
    'ev.kind.backup': 'Backup',
    'ev.kind.restore': 'Restore',
    'ev.kind.job': 'Job',
    'ev.kind.update': 'Update',
    'ev.kind.schedule': 'Schedule',
    'ev.kind.warden': 'warden',
    'ev.kind.alert': 'Alert',
    'ev.kind.game': 'Game',
    'ev.kind.other': 'Event',
    'ev.start_requested': 'Start requested',
    'ev.stop_requested': 'Stop requested',
    'ev.restart_requested': 'Restart requested',
    'ev.kill_requested': 'Kill requested',
    'ev.stopped': 'Stopped',
    'ev.started': 'Started',
    'ev.ready': 'Ready',
    'ev.adopted': 'Still running from before warden restarted (pid {pid})',
    'ev.restarting': 'Restarting (restart {n})',
    'ev.restarting_in': 'Restarting in {delay}',
    'ev.gave_up': 'Gave up after {n} failures within {window}; start it again when fixed',
    'ev.crashed': 'Crashed: {exit}',
    'ev.crashed_start': 'Exited during its start period: {exit}',
    'ev.exited': 'Exited: {exit}',
    'ev.unhealthy': 'Unhealthy, restarting: {why}',
    'ev.spawn_failed': 'Could not start: {why}',
    'ev.going_to_sleep': 'Going to sleep: nobody is playing',
    'ev.asleep': 'Asleep; a player connecting wakes it',
    'ev.waking': 'Waking up: a connection from {who}',
    'ev.sleeping': 'Nobody played for a while; asleep until someone connects',
    'ev.woken': 'Woken by a connection from {who}',
    'ev.exit.code': 'exit code {code}',
    'ev.exit.signal': 'ended by {signal}',
    'ev.program_created': 'Program created',
    'ev.program_updated': 'Definition changed',
    'ev.program_deleted': 'Program deleted',
    'ev.warden_started': 'warden started',
    'ev.warden_stopping': 'warden is stopping',
    'ev.backup_started': 'Backup {id} started ({reason})',
    'ev.backup_finished': 'Backup {id} finished: {size} in {took}',
    'ev.kind.move': 'Move',
    'ev.move_started': 'Moving to machine {node}',
    'ev.move_finished': 'Moved to machine {node} ({size}); stopped here',
    'ev.move_failed': 'Moving to machine {node} failed; it is as it was here',
    'ev.move_start_failed': 'Moved to machine {node}, but it did not start there',
    'ev.backup_failed': 'Backup {id} failed',
    'ev.backup_cancelled': 'Backup {id} cancelled',
    'ev.backup_interrupted': 'Backup {id} was interrupted when warden stopped',
    'ev.backup_verified': 'Backup {id} verified',
    'ev.backup_verified_problems': 'Backup {id} verified: {n} problems',
    'ev.backup_deleted': 'Backup {id} deleted',
    'ev.backup_pruned': 'Backup {id} removed by retention',
    'ev.restore_started': 'Restoring backup {backup}',
    'ev.restore_finished': 'Backup {backup} restored',
    'ev.restore_failed': 'Restoring backup {backup} failed',
    'ev.restore_interrupted': 'A restore was interrupted when warden stopped',
    'ev.update_available': 'Build {build} is available',
    'ev.update_check_failed': 'Update check failed',
    'ev.update_none': 'Build {build} is installed already',
    'ev.update_announced': 'The server announced an update; checking now',
    'ev.update_staging': 'Downloading build {build} beside the running server',
    'ev.update_waiting': 'Build {build} is ready to apply; waiting for its window',
    'ev.update_warned': 'Players were told about the update',
    'ev.update_stopping': 'Stopping the server to apply build {build}',
    'ev.update_backing_up': 'Taking a verified backup before the update',
    'ev.update_applying': 'Swapping in the files of build {build}',
    'ev.update_starting': 'Starting build {build}',
    'ev.update_verifying': 'Waiting for build {build} to become ready',
    'ev.update_rolling_back': 'Rolling back to the previous build',
    'ev.update_succeeded': 'Updated to build {build}',
    'ev.update_rolled_back': 'Update to build {build} failed; the previous build is back',
    'ev.update_failed': 'Update to build {build} failed',
    'ev.update_failed.java_too_old': 'Update to build {build} not started: Minecraft {minecraft} needs Java {need}, the server’s Java is {have}; the server was not touched',
    'ev.update_interrupted': 'Update to build {build} was interrupted when warden stopped',
    'ev.job_started': 'Job {job} started',
    'ev.job_finished': 'Job {job} finished in {took}',
    'ev.job_failed': 'Job {job} failed',
    'ev.job_cancelled': 'Job {job} cancelled',
    'ev.job_skipped': 'Job {job} skipped (still running)',
    'ev.job_overrun_warning': 'Job {job} is taking longer than usual',
    'ev.job_overrun': 'Job {job} overran its limit',
    'ev.schedule_fired': 'Schedule {schedule} ran',
    'ev.schedule_skipped': 'Schedule {schedule} skipped',
    'ev.schedule_missed': 'Schedule {schedule} missed a run',
    'ev.schedule_finished': 'Schedule {schedule} finished',
    'ev.schedule_failed': 'Schedule {schedule} failed',
    'ev.reason.manual': 'manual',
    'ev.reason.scheduled': 'scheduled',
    'ev.reason.manual_by': 'manual, by {user}',
    'ev.reason.schedule': 'schedule {name}',
    'ev.token': 'token {name}',
    'ev.exit': 'Exited normally',
    'ev.restarted_by_rule': 'Restarted: {what} {how} {amount} for {hold}',
    'ev.restart_rule_failed': 'Could not restart ({what} {how} {amount} for {hold})',
    'ev.rw.memory_bytes': 'memory',
    'ev.rw.virtual_bytes': 'virtual memory',
    'ev.rw.cpu_percent': 'CPU',
    'ev.rw.threads': 'threads',
    'ev.rw.open_files': 'open files',
    'ev.rw.disk_read_bps': 'disk reads',
    'ev.rw.disk_write_bps': 'disk writes',
    'ev.rw.players': 'players',
    'ev.rw.op.>': 'above',
    'ev.rw.op.>=': 'at or above',
    'ev.rw.op.<': 'below',
    'ev.rw.op.<=': 'at or below',
    'ev.rw.op.==': 'at',
    'ev.rw.op.!=': 'not at',
  },
  ko: {
    'ev.kind.state': '상태',
    'ev.kind.program': '프로그램',
    'ev.kind.backup': '백업',
    'ev.kind.restore': '복원',
    'ev.kind.job': '작업',
    'ev.kind.update': '업데이트',
    'ev.kind.schedule': '일정',
    'ev.kind.warden': 'warden',
    'ev.kind.alert': '알림',
    'ev.kind.game': '게임',
    'ev.kind.other': '이벤트',
    'ev.start_requested': '시작 요청됨',
    'ev.stop_requested': '중지 요청됨',
    'ev.restart_requested': '재시작 요청됨',
    'ev.kill_requested': '강제 종료 요청됨',
    'ev.stopped': '중지됨',
    'ev.started': '시작됨',
    'ev.ready': '준비됨',
    'ev.adopted': 'warden 재시작 전부터 실행 중 (pid {pid})',
    'ev.restarting': '재시작 중 ({n}번째)',
    'ev.restarting_in': '{delay} 후 재시작',
    'ev.gave_up': '{window} 안에 {n}번 실패하여 재시작을 중단함. 고친 뒤 다시 시작하세요',
    'ev.crashed': '비정상 종료: {exit}',
    'ev.crashed_start': '시작 중 종료됨: {exit}',
    'ev.exited': '종료됨: {exit}',
    'ev.unhealthy': '응답 없음, 재시작: {why}',
    'ev.spawn_failed': '시작할 수 없음: {why}',
    'ev.going_to_sleep': '절전 준비: 플레이어가 없음',
    'ev.asleep': '절전 중: 플레이어가 접속하면 깨어납니다',
    'ev.waking': '깨어나는 중: {who}에서 접속',
    'ev.sleeping': '한동안 플레이어가 없어 절전 모드로 전환; 접속하면 깨어납니다',
    'ev.woken': '{who}에서 접속해 깨어남',
    'ev.exit.code': '종료 코드 {code}',
    'ev.exit.signal': '{signal} 신호로 종료',
    'ev.program_created': '프로그램 생성됨',
    'ev.program_updated': '정의 변경됨',
    'ev.program_deleted': '프로그램 삭제됨',
    'ev.warden_started': 'warden 시작됨',
    'ev.warden_stopping': 'warden 종료 중',
    'ev.backup_started': '백업 {id} 시작 ({reason})',
    'ev.backup_finished': '백업 {id} 완료: {size}, {took}',
    'ev.kind.move': '이전',
    'ev.move_started': '머신 {node}(으)로 옮기는 중',
    'ev.move_finished': '머신 {node}(으)로 옮김({size}); 여기서는 중지됨',
    'ev.move_failed': '머신 {node}(으)로 옮기지 못함; 여기서는 그대로임',
    'ev.move_start_failed': '머신 {node}(으)로 옮겼지만 그곳에서 시작되지 않음',
    'ev.backup_failed': '백업 {id} 실패',
    'ev.backup_cancelled': '백업 {id} 취소됨',
    'ev.backup_interrupted': 'warden이 멈춰 백업 {id}이(가) 중단됨',
    'ev.backup_verified': '백업 {id} 검증됨',
    'ev.backup_verified_problems': '백업 {id} 검증: 문제 {n}개',
    'ev.backup_deleted': '백업 {id} 삭제됨',
    'ev.backup_pruned': '보존 규칙으로 백업 {id} 삭제됨',
    'ev.restore_started': '백업 {backup} 복원 중',
    'ev.restore_finished': '백업 {backup} 복원됨',
    'ev.restore_failed': '백업 {backup} 복원 실패',
    'ev.restore_interrupted': 'warden이 멈춰 복원이 중단됨',
    'ev.update_available': '빌드 {build} 사용 가능',
    'ev.update_check_failed': '업데이트 확인 실패',
    'ev.update_none': '빌드 {build}이(가) 이미 설치됨',
    'ev.update_announced': '서버가 업데이트를 알림, 지금 확인 중',
    'ev.update_staging': '실행 중인 서버 옆에 빌드 {build} 다운로드 중',
    'ev.update_waiting': '빌드 {build} 적용 준비 완료, 적용 시점 대기 중',
    'ev.update_warned': '플레이어에게 업데이트를 알림',
    'ev.update_stopping': '빌드 {build} 적용을 위해 서버 중지 중',
    'ev.update_backing_up': '업데이트 전 검증된 백업 생성 중',
    'ev.update_applying': '빌드 {build} 파일 교체 중',
    'ev.update_starting': '빌드 {build} 시작 중',
    'ev.update_verifying': '빌드 {build} 준비 대기 중',
    'ev.update_rolling_back': '이전 빌드로 되돌리는 중',
    'ev.update_succeeded': '빌드 {build}(으)로 업데이트됨',
    'ev.update_rolled_back': '빌드 {build} 업데이트 실패, 이전 빌드로 되돌림',
    'ev.update_failed': '빌드 {build} 업데이트 실패',
    'ev.update_failed.java_too_old': '빌드 {build} 업데이트를 시작하지 않음: Minecraft {minecraft}에는 Java {need} 이상이 필요한데 서버의 Java는 {have}입니다. 서버는 그대로입니다',
    'ev.update_interrupted': 'warden 중지로 빌드 {build} 업데이트가 중단됨',
    'ev.job_started': '작업 {job} 시작',
    'ev.job_finished': '작업 {job} 완료, {took}',
    'ev.job_failed': '작업 {job} 실패',
    'ev.job_cancelled': '작업 {job} 취소됨',
    'ev.job_skipped': '작업 {job} 건너뜀 (아직 실행 중)',
    'ev.job_overrun_warning': '작업 {job}이(가) 평소보다 오래 걸림',
    'ev.job_overrun': '작업 {job}이(가) 제한 시간을 넘김',
    'ev.schedule_fired': '일정 {schedule} 실행됨',
    'ev.schedule_skipped': '일정 {schedule} 건너뜀',
    'ev.schedule_missed': '일정 {schedule} 실행 놓침',
    'ev.schedule_finished': '일정 {schedule} 완료',
    'ev.schedule_failed': '일정 {schedule} 실패',
    'ev.reason.manual': '수동',
    'ev.reason.scheduled': '예약',
    'ev.reason.manual_by': '수동, {user}',
    'ev.reason.schedule': '일정 {name}',
    'ev.token': '토큰 {name}',
    'ev.exit': '정상 종료',
    'ev.restarted_by_rule': '재시작됨: {what}이(가) {hold} 동안 {amount} {how}',
    'ev.restart_rule_failed': '재시작할 수 없음 ({what}이(가) {hold} 동안 {amount} {how})',
    'ev.rw.memory_bytes': '메모리',
    'ev.rw.virtual_bytes': '가상 메모리',
    'ev.rw.cpu_percent': 'CPU',
    'ev.rw.threads': '스레드 수',
    'ev.rw.open_files': '열린 파일 수',
    'ev.rw.disk_read_bps': '디스크 읽기',
    'ev.rw.disk_write_bps': '디스크 쓰기',
    'ev.rw.players': '플레이어 수',
    'ev.rw.op.>': '초과',
    'ev.rw.op.>=': '이상',
    'ev.rw.op.<': '미만',
    'ev.rw.op.<=': '이하',
    'ev.rw.op.==': '같음',
    'ev.rw.op.!=': '다름',
  },
});

/** A duration in ms, humanised ("6 s", "3 h 4 m"). */
export const took = (ms) => fmt.duration(ms == null ? null : Math.max(0, ms) / 1000);

/** How a process ended, in words ("exit code 1", "ended by SIGKILL"). */
export function exitText(exit) {
  if (!exit) return t('common.none');
  if (exit.code === 0) return t('ev.exit');
  if (exit.code != null) return t('ev.exit.code', { code: exit.code });
  if (exit.signal) return t('ev.exit.signal', { signal: exit.signal });
  return exit.description;
}

/** Reason texts of the lifecycle (src/supervisor/lifecycle.rs), matched in order. */
const STATE_REASONS = [
  [/^start requested/, () => t('ev.start_requested')],
  [/^stop requested/, () => t('ev.stop_requested')],
  [/^restart requested/, () => t('ev.restart_requested')],
  [/^kill requested/, () => t('ev.kill_requested')],
  [/^restarting \(restart (\d+)\)/, (m) => t('ev.restarting', { n: fmt.int(Number(m[1])) })],
  [/^restarting in ([\d.]+) s/, (m) => t('ev.restarting_in', { delay: took(Number(m[1]) * 1000) })],
  [/^gave up after (\d+) failures within (\d+) s/, (m) =>
    t('ev.gave_up', { n: fmt.int(Number(m[1])), window: took(Number(m[2]) * 1000) })],
  [/^unhealthy \((.*)\); stopping/, (m) => t('ev.unhealthy', { why: m[1] })],
  [/^spawn failed: (.*)$/, (m) => t('ev.spawn_failed', { why: m[1] })],
  [/^going to sleep: /, () => t('ev.going_to_sleep')],
  [/^asleep \(/, () => t('ev.asleep')],
  [/^waking up: a connection from (\S+)$/, (m) => t('ev.waking', { who: m[1] })],
];

function stateSentence(d) {
  const reason = d.reason || '';
  if (d.to === 'crashed') {
    if (reason.startsWith('spawn failed: ')) return t('ev.spawn_failed', { why: reason.slice(14) });
    if (reason.startsWith('exited during its start period')) return t('ev.crashed_start', { exit: exitText(d.exit) });
    return t('ev.crashed', { exit: exitText(d.exit) });
  }
  if (d.to === 'fatal' && reason.startsWith('spawn failed: ')) {
    return t('ev.spawn_failed', { why: reason.slice(14) });
  }
  // A stop someone asked for ends however the stop ended it: it reads "stopped".
  if (d.to === 'stopped' && d.from === 'stopping') return t('ev.stopped');
  if (d.to === 'stopped' && d.exit) return t('ev.exited', { exit: exitText(d.exit) });
  if (d.to === 'running') {
    const adopted = /^adopted pid (\d+)/.exec(reason);
    if (adopted) return t('ev.adopted', { pid: adopted[1] });
    return reason.includes('ready') ? t('ev.ready') : t('ev.started');
  }
  for (const [re, f] of STATE_REASONS) {
    const m = reason.match(re);
    if (m) return f(m);
  }
  return reason || t(`state.${d.to}`);
}

/** Who acted: a user's name, or "token NAME" for an API token (`token:NAME`). */
export function actor(name) {
  return name && name.startsWith('token:') ? t('ev.token', { name: name.slice(6) }) : name;
}

/** Why a backup was made (`manual`, `manual by NAME`, `schedule …`), in words. */
export function backupReason(r) {
  if (!r || r === 'manual') return t('ev.reason.manual');
  const by = /^manual by (.+)$/.exec(r);
  if (by) return t('ev.reason.manual_by', { user: actor(by[1]) });
  const sched = /^schedule '?([^']+)'?/.exec(r);
  if (sched) return t('ev.reason.schedule', { name: sched[1] });
  return r;
}

/** A `restart_when` condition's parts in words: "memory", "above", "6 GiB", "10 min". */
function ruleWords(d) {
  const m = d.metric;
  const bytes = m === 'memory_bytes' || m === 'virtual_bytes';
  const rate = m === 'disk_read_bps' || m === 'disk_write_bps';
  const amount = bytes ? fmt.bytes(d.value) : rate ? fmt.rate(d.value) : m === 'cpu_percent' ? fmt.percent(d.value) : fmt.int(d.value);
  return { what: t(`ev.rw.${m}`), how: t(`ev.rw.op.${d.op}`), amount, hold: took(d.hold_seconds * 1000) };
}

/** The sentence for one stored or live event (`{kind, message, data}`). */
export function eventText(e) {
  const d = e.data || {};
  const k = e.kind;
  if (k === 'state' && d.to) return stateSentence(d);
  if (k === 'backup_finished' && d.archive_bytes != null) {
    return t('ev.backup_finished', { id: d.backup_id, size: fmt.bytes(d.archive_bytes), took: took(d.duration_ms) })
      .replace(/ in —$|, —$/, '');
  }
  if (k === 'backup_started') return t('ev.backup_started', { id: d.backup_id, reason: backupReason(d.reason) });
  if (k === 'backup_verified' && d.problems) return t('ev.backup_verified_problems', { id: d.backup_id, n: fmt.int(d.problems) });
  if (k === 'woken') {
    const m = /^woken by a connection from (\S+)$/.exec(e.message || '');
    if (m) return t('ev.woken', { who: m[1] });
  }
  if ((k === 'restarted_by_rule' || k === 'restart_rule_failed') && d.metric) {
    return t(`ev.${k}`, ruleWords(d));
  }
  if (k.startsWith('move_') && d.node) return t(`ev.${k}`, { node: d.node, size: fmt.bytes(d.archive_bytes) });
  if (k === 'update_failed' && d.code === 'java_too_old') {
    const m = /Minecraft (\S+) needs Java (\d+); .+ is Java (\d+)\./.exec(e.message || '');
    if (m) return t('ev.update_failed.java_too_old', { build: d.build, minecraft: m[1], need: m[2], have: m[3] });
  }
  if (k === 'job_finished') return t('ev.job_finished', { job: d.job, took: took(d.duration_ms) });
  const key = `ev.${k}`;
  const s = t(key, { id: d.backup_id, backup: d.backup_id, job: d.job, schedule: d.schedule, build: d.build });
  return s === key ? e.message : s;
}

/** A short label for the event's family ("Backup", "Job"), for the timeline's tag. */
export function eventKindLabel(kind) {
  const family = (kind || '').split('_')[0];
  const key = `ev.kind.${family}`;
  const s = t(key);
  return s === key ? t('ev.kind.other') : s;
}

/** The reason a program failed, re-exported for pages that show events and reasons. */
export { reasonText };
