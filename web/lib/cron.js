// A cron trigger explained in the user's language. Common shapes (every N minutes, hourly,
// daily, weekly, monthly at a time; interval triggers such as `every 6h`) read as a
// sentence; anything else shows only the expression, never the server's English text.

import { addStrings, t } from './i18n.js';

addStrings({
  en: {
    'cron.everyMinute': 'Every minute',
    'cron.everyMinutes': 'Every {n} minutes',
    'cron.hourlyAt': 'Every hour at minute {m}',
    'cron.everyHours': 'Every {n} hours at minute {m}',
    'cron.daily': 'Every day at {time}',
    'cron.weekly': 'Every {days} at {time}',
    'cron.monthly': 'On day {d} of every month at {time}',
    'cron.interval': 'Every {n}',
    'cron.day.0': 'Sunday',
    'cron.day.1': 'Monday',
    'cron.day.2': 'Tuesday',
    'cron.day.3': 'Wednesday',
    'cron.day.4': 'Thursday',
    'cron.day.5': 'Friday',
    'cron.day.6': 'Saturday',
    'cron.and': ', ',
  },
  ko: {
    'cron.everyMinute': '매분',
    'cron.everyMinutes': '{n}분마다',
    'cron.hourlyAt': '매시 {m}분',
    'cron.everyHours': '{n}시간마다 {m}분',
    'cron.daily': '매일 {time}',
    'cron.weekly': '매주 {days} {time}',
    'cron.monthly': '매월 {d}일 {time}',
    'cron.interval': '{n}마다',
    'cron.day.0': '일요일',
    'cron.day.1': '월요일',
    'cron.day.2': '화요일',
    'cron.day.3': '수요일',
    'cron.day.4': '목요일',
    'cron.day.5': '금요일',
    'cron.day.6': '토요일',
    'cron.and': ', ',
  },
});

const num = (s) => (/^\d+$/.test(s) ? Number(s) : null);
const pad = (n) => String(n).padStart(2, '0');
const DAY_NAMES = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

function days(field) {
  const out = [];
  for (const part of field.toLowerCase().split(',')) {
    const range = /^(\w+)-(\w+)$/.exec(part);
    const val = (s) => (s in DAY_NAMES ? DAY_NAMES[s] : num(s) != null ? num(s) % 7 : null);
    if (range) {
      const a = val(range[1]);
      const b = val(range[2]);
      if (a == null || b == null) return null;
      for (let d = a; d !== (b + 1) % 7; d = (d + 1) % 7) out.push(d);
    } else {
      const v = val(part);
      if (v == null) return null;
      out.push(v);
    }
  }
  return out.map((d) => t(`cron.day.${d}`)).join(t('cron.and'));
}

/** The trigger as a sentence, or null when its shape is not one of the common ones. */
export function describeTrigger(expr) {
  const text = (expr || '').trim();
  const every = /^every\s+(.+)$/i.exec(text);
  if (every) return t('cron.interval', { n: every[1] });
  const f = text.split(/\s+/);
  if (f.length !== 5) return null;
  const [mi, h, dom, mon, dow] = f;
  const m = num(mi);
  const hr = num(h);
  const rest = (a, b, c) => dom === a && mon === b && dow === c;
  if (mi === '*' && h === '*' && rest('*', '*', '*')) return t('cron.everyMinute');
  const stepM = /^\*\/(\d+)$/.exec(mi);
  if (stepM && h === '*' && rest('*', '*', '*')) return t('cron.everyMinutes', { n: stepM[1] });
  if (m == null) return null;
  if (h === '*' && rest('*', '*', '*')) return t('cron.hourlyAt', { m: pad(m) });
  const stepH = /^\*\/(\d+)$/.exec(h);
  if (stepH && rest('*', '*', '*')) return t('cron.everyHours', { n: stepH[1], m: pad(m) });
  if (hr == null) return null;
  const time = `${pad(hr)}:${pad(m)}`;
  if (rest('*', '*', '*')) return t('cron.daily', { time });
  if (dom === '*' && mon === '*') {
    const d = days(dow);
    return d ? t('cron.weekly', { days: d, time }) : null;
  }
  if (num(dom) != null && mon === '*' && dow === '*') return t('cron.monthly', { d: dom, time });
  return null;
}
