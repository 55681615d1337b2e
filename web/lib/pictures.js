// The pictures people look at rather than read: a program's availability strip (24 h /
// 7 d, from its state events), a job's run durations with p50/p90, and a program's backup
// sizes with the space left at the destination. Figures come from the server's history
// endpoints; what is drawn carries data attributes so the browser tests read the picture.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from './html.js';
import { addStrings, fmt, plural, t } from './i18n.js';
import { api, seg } from './api.js';
import { live } from './live.js';
import { BINARY_STEPS, Chart } from './charts.js';
import { toastError } from './ui.js';

addStrings({
  en: {
    'pic.avail.title': 'Availability',
    'pic.avail.uptime': 'Up {pct} of the last {range}',
    'pic.avail.uptimeSince': 'Up {pct} of the {dur} since it was created',
    'pic.avail.noUptime': 'The program did not exist in the last {range}.',
    'pic.avail.strip': 'Availability over the last {range}',
    'pic.avail.running': 'Running',
    'pic.avail.stopped': 'Stopped',
    'pic.avail.crashed': 'Crashed',
    'pic.avail.gave_up': 'Gave up',
    'pic.avail.changing': 'Starting or stopping',
    'pic.avail.unknown': 'Not created yet',
    'pic.avail.segment': '{state}: {from} – {to} ({dur})',
    'pic.avail.segments.one': '{n} stretch',
    'pic.avail.segments.other': '{n} stretches',
    'pic.dur.title': 'Run durations',
    'pic.dur.series': 'Duration',
    'pic.dur.p50': 'Median (p50) {v}',
    'pic.dur.p90': '90th percentile (p90) {v}',
    'pic.dur.p50Line': 'p50',
    'pic.dur.p90Line': 'p90',
    'pic.dur.samples.one': 'from {n} succeeded run',
    'pic.dur.samples.other': 'from {n} succeeded runs',
    'pic.dur.noSamples': 'No run has succeeded yet.',
    'pic.dur.none': 'No finished runs yet.',
    'pic.size.title': 'Backup sizes',
    'pic.size.series': 'Archive size',
    'pic.size.last': 'Last backup {size}',
    'pic.size.free': 'Free at the destination: {free} of {total}',
    'pic.size.room.one': 'room for about {n} more backup of that size',
    'pic.size.room.other': 'room for about {n} more backups of that size',
    'pic.size.noSpace': 'The free space at the destination cannot be read.',
  },
  ko: {
    'pic.avail.title': '가용성',
    'pic.avail.uptime': '최근 {range} 동안 {pct} 가동',
    'pic.avail.uptimeSince': '생성 후 {dur} 동안 {pct} 가동',
    'pic.avail.noUptime': '최근 {range} 동안 프로그램이 없었습니다.',
    'pic.avail.strip': '최근 {range} 가용성',
    'pic.avail.running': '실행 중',
    'pic.avail.stopped': '중지됨',
    'pic.avail.crashed': '비정상 종료',
    'pic.avail.gave_up': '포기함',
    'pic.avail.changing': '시작 또는 중지 중',
    'pic.avail.unknown': '생성 전',
    'pic.avail.segment': '{state}: {from} – {to} ({dur})',
    'pic.avail.segments.other': '구간 {n}개',
    'pic.dur.title': '실행 시간',
    'pic.dur.series': '소요 시간',
    'pic.dur.p50': '중앙값 {v}',
    'pic.dur.p90': '90번째 백분위수 {v}',
    'pic.dur.p50Line': '중앙값',
    'pic.dur.p90Line': '90번째 백분위수',
    'pic.dur.samples.other': '성공한 실행 {n}회 기준',
    'pic.dur.noSamples': '아직 성공한 실행이 없습니다.',
    'pic.dur.none': '아직 끝난 실행이 없습니다.',
    'pic.size.title': '백업 크기',
    'pic.size.series': '압축 파일 크기',
    'pic.size.last': '마지막 백업 {size}',
    'pic.size.free': '저장 위치 여유 공간: {total} 중 {free}',
    'pic.size.room.other': '같은 크기의 백업 약 {n}개를 더 저장할 수 있음',
    'pic.size.noSpace': '저장 위치의 여유 공간을 읽을 수 없습니다.',
  },
});

const STRIP_RANGES = ['24h', '7d'];
const dur = (ms) => fmt.duration(ms / 1000);

/** Refetches (debounced) when something happens to `program` on the live connection. */
function useProgramActivity(program, fn) {
  useEffect(() => {
    let timer = 0;
    const unsubscribe = live.subscribe('events', (ev) => {
      if (ev.program !== program || ev.kind === 'progress' || ev.kind === 'step') return;
      clearTimeout(timer);
      timer = setTimeout(fn, 300);
    });
    const unresync = live.onResync(fn);
    return () => {
      clearTimeout(timer);
      unsubscribe();
      unresync();
    };
  }, [program]);
}

/** "Up 99.1 % of the last 24 hours", or of the time since the program was created. */
function uptimeText(data, rangeText) {
  const pct = fmt.percent(data.uptime_percent);
  const first = data.segments[0];
  if (first && first.state === 'unknown') {
    return t('pic.avail.uptimeSince', { pct, dur: dur(data.to - first.to) });
  }
  return t('pic.avail.uptime', { pct, range: rangeText });
}

/** The availability strip of a program: one coloured stretch per state, with the uptime. */
export function AvailabilityStrip({ name }) {
  const [range, setRange] = useState('24h');
  const [data, setData] = useState(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let alive = true;
    api
      .get(`/api/programs/${seg(name)}/availability?range=${range}`)
      .then((r) => alive && setData(r))
      .catch(toastError);
    return () => {
      alive = false;
    };
  }, [name, range, version]);
  useProgramActivity(name, () => setVersion((v) => v + 1));

  const span = data ? data.to - data.from : 1;
  const rangeText = t(`range.${range}`);
  const totals = data
    ? [
        ['running', data.totals.running_ms],
        ['stopped', data.totals.stopped_ms],
        ['crashed', data.totals.crashed_ms],
        ['gave_up', data.totals.gave_up_ms],
        ['changing', data.totals.changing_ms],
      ].filter(([, ms]) => ms > 0)
    : [];
  return html`<section class="card" aria-labelledby="avail-h" data-availability=${name}>
    <div class="toolbar">
      <h2 id="avail-h">${t('pic.avail.title')}</h2>
      <span class="grow"></span>
      <div class="segmented" role="group" aria-label=${t('charts.range')}>
        ${STRIP_RANGES.map(
          (r) => html`<button type="button" class=${r === range ? 'btn on' : 'btn'} aria-pressed=${r === range}
            data-avail-range=${r} onClick=${() => setRange(r)}>${t(`range.${r}`)}</button>`,
        )}
      </div>
    </div>
    ${data == null
      ? html`<p class="muted">${t('common.loading')}</p>`
      : html`<p data-uptime=${data.uptime_percent == null ? '' : data.uptime_percent.toFixed(1)} data-range-shown=${data.range}>
            ${data.uptime_percent == null
              ? t('pic.avail.noUptime', { range: rangeText })
              : html`<strong class="num">${uptimeText(data, rangeText)}</strong>`}
            <span class="muted small" data-segment-count=${data.segments.length}> · ${plural('pic.avail.segments', data.segments.length)}</span>
          </p>
          <div class="strip" role="img" aria-label=${t('pic.avail.strip', { range: rangeText })}>
            ${data.segments.map(
              (s) => html`<span class=${`seg seg-${s.state}`} data-seg=${s.state}
                style=${`width: ${((s.to - s.from) * 100) / span}%`}
                title=${t('pic.avail.segment', {
                  state: t(`pic.avail.${s.state}`),
                  from: fmt.time(s.from),
                  to: fmt.time(s.to),
                  dur: dur(s.to - s.from),
                })}></span>`,
            )}
          </div>
          <ul class="legend small">
            ${totals.map(
              ([state, ms]) => html`<li data-total=${state}><span class=${`key seg-${state}`} aria-hidden="true"></span>
                ${t(`pic.avail.${state}`)} <span class="num">${dur(ms)}</span></li>`,
            )}
          </ul>`}
  </section>`;
}

/** A job's run durations over time with its p50 and p90 drawn as flat lines. */
export function JobDurations({ job, version }) {
  const [d, setD] = useState(null);
  useEffect(() => {
    let alive = true;
    api
      .get(`/api/jobs/${seg(job)}/durations`)
      .then((r) => alive && setD(r))
      .catch(toastError);
    return () => {
      alive = false;
    };
  }, [job, version]);
  const data = useMemo(() => {
    if (!d) return null;
    const ts = d.runs.map((r) => r.started_at);
    return [ts, d.runs.map((r) => r.duration_ms), ts.map(() => d.p50_ms), ts.map(() => d.p90_ms)];
  }, [d]);
  if (!d) return html`<p class="muted">${t('common.loading')}</p>`;
  if (!d.runs.length) return html`<p class="muted" data-durations=${job}>${t('pic.dur.none')}</p>`;
  const ts = data[0];
  const spanMs = Math.max(60e3, ts[ts.length - 1] - ts[0]);
  return html`<div class="sub" data-durations=${job}>
    <p class="small">
      ${d.p50_ms == null
        ? html`<span class="muted">${t('pic.dur.noSamples')}</span>`
        : html`<strong class="num" data-p50=${d.p50_ms}>${t('pic.dur.p50', { v: dur(d.p50_ms) })}</strong>
            · <strong class="num" data-p90=${d.p90_ms}>${t('pic.dur.p90', { v: dur(d.p90_ms) })}</strong>
            · <span class="muted">${plural('pic.dur.samples', d.samples)}</span>`}
    </p>
    <${Chart} id=${`durations-${job}`} title=${t('pic.dur.title')} data=${data} points=${d.runs.length} spanMs=${spanMs}
      series=${[
        { label: t('pic.dur.series') },
        { label: t('pic.dur.p50Line'), dash: true },
        { label: t('pic.dur.p90Line'), dash: true },
      ]}
      yFormat=${dur} emptyMax=${60e3} />
  </div>`;
}

/** A program's backup sizes over time, with the space left at the destination. */
export function BackupSizes({ name, version }) {
  const [d, setD] = useState(null);
  useEffect(() => {
    let alive = true;
    api
      .get(`/api/programs/${seg(name)}/backup-sizes`)
      .then((r) => alive && setD(r))
      .catch(toastError);
    return () => {
      alive = false;
    };
  }, [name, version]);
  const data = useMemo(
    () => (d ? [d.backups.map((b) => b.finished_at), d.backups.map((b) => b.archive_bytes)] : null),
    [d],
  );
  if (!d || !d.backups.length) return null;
  const last = d.backups[d.backups.length - 1];
  const ts = data[0];
  const spanMs = Math.max(3600e3, ts[ts.length - 1] - ts[0]);
  const room = d.free_bytes != null && last.archive_bytes > 0 ? Math.floor(d.free_bytes / last.archive_bytes) : null;
  return html`<div class="sub" data-backup-sizes=${name}>
    <p class="small">
      <strong class="num" data-last-size=${last.archive_bytes}>${t('pic.size.last', { size: fmt.bytes(last.archive_bytes) })}</strong>
      ${' · '}
      ${d.free_bytes == null
        ? html`<span class="muted">${t('pic.size.noSpace')}</span>`
        : html`<span data-free=${d.free_bytes}>${t('pic.size.free', { free: fmt.bytes(d.free_bytes), total: fmt.bytes(d.total_bytes) })}</span>
            ${room != null && html`<span class="muted"> · ${plural('pic.size.room', room)}</span>`}`}
    </p>
    <${Chart} id="backup-sizes" title=${t('pic.size.title')} data=${data} points=${d.backups.length} spanMs=${spanMs}
      series=${[{ label: t('pic.size.series') }]} yFormat=${(v) => fmt.bytes(v)} emptyMax=${1024 ** 2} incrs=${BINARY_STEPS} />
  </div>`;
}
