// Words for numbers, seats, dates and durations.

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const shortFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const when = (iso) => (iso ? dateFormat.format(new Date(iso)) : '');
export const whenShort = (iso) => (iso ? shortFormat.format(new Date(iso)) : '');

/** "seat 4", "seats 3 and 4", "seats 1, 2 and 7" (runs of more than three: "seats 10–19"). */
export function seatList(seats) {
  const sorted = [...seats].sort((a, b) => a - b);
  if (sorted.length === 0) return 'no seats';
  const parts = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j += 1;
    if (j - i >= 3) parts.push(`${sorted[i]}–${sorted[j]}`);
    else for (let k = i; k <= j; k += 1) parts.push(String(sorted[k]));
    i = j + 1;
  }
  const noun = sorted.length === 1 ? 'seat' : 'seats';
  if (parts.length === 1) return `${noun} ${parts[0]}`;
  return `${noun} ${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

export const plural = (n, one, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** Seconds in words, in the two largest units it has: 90 → "1 minute 30 seconds",
 * 600 → "10 minutes", 93600 → "1 day 2 hours". */
export function duration(seconds) {
  const units = [[86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  const parts = [];
  let left = Math.max(0, Math.round(seconds));
  for (const [size, name] of units) {
    const n = Math.floor(left / size);
    left -= n * size;
    if (n && parts.length < 2) parts.push(plural(n, name));
  }
  return parts.length ? parts.join(' ') : plural(0, 'second');
}

/** "4:05" left until `iso`, or null once it is past. */
export function countdown(iso, now = Date.now()) {
  const left = Math.ceil((new Date(iso).getTime() - now) / 1000);
  if (!(left > 0)) return null;
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = String(left % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export const ROLE_NAMES = { user: 'member', organizer: 'organizer', orgAdmin: 'administrator' };
export const roleName = (role) => ROLE_NAMES[role] || role;
/** "a member", "an organizer", "an administrator". */
export const aRole = (role) => `${/^[aeiou]/.test(roleName(role)) ? 'an' : 'a'} ${roleName(role)}`;
export const canOrganize = (role) => role === 'organizer' || role === 'orgAdmin';

/** Every booking status the API has, in words. */
export const STATUS_NAMES = {
  confirmed: 'Confirmed',
  waiting: 'Waiting',
  offered: 'Offered',
  declined: 'Declined',
  expired: 'Expired',
  cancelled: 'Cancelled',
};
export const statusName = (s) => STATUS_NAMES[s] || s;

/** A value for `<input type="datetime-local">` from an RFC 3339 time (in local time). */
export function toLocalInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** RFC 3339 (UTC) from a `datetime-local` value read as local time. */
export const fromLocalInput = (value) => new Date(value).toISOString();
