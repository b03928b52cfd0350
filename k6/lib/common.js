// Shared by the k6 scenarios: the fans seeded by `imticket-admin seed --tokens-out` (one copy
// for every VU), the admin's token, and a sale set up through the API.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { SharedArray } from 'k6/data';

export const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
export const API = `${BASE}/api/v1`;
export const FANS = new SharedArray('fans', () => JSON.parse(open(__ENV.FANS_FILE || '../.data/k6/fans.json')));
const JSON_HEADERS = { 'content-type': 'application/json' };

export function adminHeaders() {
  const login = http.post(`${API}/auth/login`, JSON.stringify({
    email: __ENV.ADMIN_EMAIL || 'admin@imticket.local',
    password: __ENV.ADMIN_PASSWORD || 'admin-password',
  }), { headers: JSON_HEADERS });
  check(login, { 'admin login 200': (r) => r.status === 200 });
  return { headers: { ...JSON_HEADERS, authorization: `Bearer ${login.json('access_token')}` } };
}

/// A concert with one schedule of `seats` seats (price 100), on sale at `opensAt` (a Date) or now.
export function createSale(admin, title, seats, opensAt) {
  const body = { title };
  if (opensAt) body.sale_opens_at = opensAt.toISOString();
  const concert = http.post(`${API}/concerts`, JSON.stringify(body), admin);
  check(concert, { 'concert 201': (r) => r.status === 201 });
  const schedule = http.post(`${API}/concerts/${concert.json('id')}/schedules`, JSON.stringify({
    starts_at: new Date(Date.now() + 30 * 86400 * 1000).toISOString(),
  }), admin);
  check(schedule, { 'schedule 201': (r) => r.status === 201 });
  const perRow = Math.min(50, seats);
  const rows = Math.ceil(seats / perRow);
  const job = http.post(`${API}/schedules/${schedule.json('id')}/seats?mode=inline`, JSON.stringify({
    sections: [{ name: 'Floor', rows, seats_per_row: perRow, price: 100 }],
  }), admin);
  check(job, { 'seats accepted': (r) => r.status === 201 || r.status === 202 });
  const jobId = job.json('job_id') || job.json('id');
  for (let i = 0; i < 1200; i++) {
    if (http.get(`${API}/jobs/${jobId}`).json('status') === 'done') break;
    sleep(0.1);
  }
  return { concert: concert.json('id'), schedule: schedule.json('id'), seats: rows * perRow };
}

export function fanHeaders(fan, queueToken) {
  const headers = { ...JSON_HEADERS, authorization: `Bearer ${fan.access_token}` };
  if (queueToken) headers['x-queue-token'] = queueToken;
  return { headers };
}

export function json(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

/// Joins the concert's line and polls as told (`poll_after_seconds`) until active. Returns
/// { token, status }: status `active`, or how the wait ended (`sold_out`, `expired`,
/// `timeout`, `failed`).
export function joinAndWait(concert, fan, maxSeconds = 600) {
  const joined = http.post(`${API}/concerts/${concert}/queue`, null, { ...fanHeaders(fan), tags: { name: 'join' } });
  check(joined, { 'join 200': (r) => r.status === 200 });
  let status = json(joined);
  const token = status?.queue_token;
  if (!token) return { token: null, status: 'failed' };
  const deadline = Date.now() + maxSeconds * 1000;
  while (status && status.status !== 'active') {
    if (['sold_out', 'expired'].includes(status.status)) return { token, status: status.status };
    if (Date.now() > deadline) return { token, status: 'timeout' };
    // As the server says: it spreads a long line's polls (longer waits further back).
    sleep(Math.max(status.poll_after_seconds || 1, 0.2));
    const res = http.get(`${API}/queue/status`, { ...fanHeaders(fan, token), tags: { name: 'status' } });
    check(res, { 'status 200': (r) => r.status === 200 });
    status = json(res);
  }
  return { token, status: status ? 'active' : 'failed' };
}

export function shuffled(list) {
  const a = list.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/// What an active fan does: reads the seat map, holds `want` random free seats (another pick
/// after a 409, up to `attempts` times) and pays the hold with an Idempotency-Key.
/// Returns { outcome, seats, conflicts }: outcome `paid`, `sold_out` (no free seat left),
/// `failed` (an unexpected answer) or `gave_up` (every attempt lost its seats).
export function buy(schedule, queue, want, attempts = 8) {
  let conflicts = 0;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const map = http.get(`${API}/schedules/${schedule}/seats`, { tags: { name: 'seat map' } });
    const free = (json(map)?.seats || []).filter((s) => s.status === 'available').map((s) => s.id);
    if (free.length === 0) return { outcome: 'sold_out', seats: [], conflicts };
    const seats = shuffled(free).slice(0, Math.min(want, free.length));
    const hold = http.post(`${API}/reservations`, JSON.stringify({ schedule_id: schedule, seat_ids: seats }),
      { headers: queue.headers, tags: { name: 'hold' } });
    if (hold.status === 409) {
      conflicts += 1;
      continue;
    }
    if (!check(hold, { 'hold 201': (r) => r.status === 201 })) return { outcome: 'failed', seats: [], conflicts };
    const pay = http.post(`${API}/reservations/${hold.json('id')}/payments`, null, {
      headers: { ...queue.headers, 'idempotency-key': `buy-${hold.json('id')}` }, tags: { name: 'pay' },
    });
    const paid = check(pay, { 'pay 201': (r) => r.status === 201 });
    return { outcome: paid ? 'paid' : 'failed', seats: paid ? seats : [], conflicts };
  }
  return { outcome: 'gave_up', seats: [], conflicts };
}
