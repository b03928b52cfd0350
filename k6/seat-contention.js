// Many fans, few seats: every fan (FANS, default all seeded) is admitted at once and tries to
// hold 1–2 random seats of SEATS (default 50) and pay, retrying another free seat after a 409,
// until the seats are gone. Then, through the API only, teardown checks nothing was oversold:
// every seat paid for by a fan is in exactly one fan's paid or confirmed reservation, and the
// seat map shows at most SEATS seats not available.
//   scripts/k6.sh seat-contention          (CAPACITY must admit everyone: scripts/k6.sh sets it)
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { API, FANS as ALL_FANS, adminHeaders, buy, createSale, fanHeaders, joinAndWait, json } from './lib/common.js';

const FANS = Math.min(Number(__ENV.FANS || ALL_FANS.length), ALL_FANS.length);
const SEATS = Number(__ENV.SEATS || 50);
const paidSeats = new Counter('contention_seats_paid');
const conflicts = new Counter('contention_conflicts');
const oversold = new Counter('contention_oversold');

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export const options = {
  setupTimeout: '120s',
  teardownTimeout: '300s',
  scenarios: {
    contention: { executor: 'per-vu-iterations', vus: FANS, iterations: 1, maxDuration: __ENV.MAX_DURATION || '5m' },
    // Meanwhile and after: one observer reads the map every second (it never shows more
    // seats taken than exist); it also makes the run long enough for k6's HTML report.
    observer: { executor: 'constant-vus', vus: 1, duration: __ENV.OBSERVE || '15s', exec: 'observe' },
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:hold}': ['p(95)<2000'],
    contention_oversold: ['count==0'],
    contention_seats_paid: [`count<=${SEATS}`],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  return createSale(adminHeaders(), `Contention ${new Date().toISOString()}`, SEATS);
}

export default function (data) {
  const fan = ALL_FANS[(exec.vu.idInTest - 1) % ALL_FANS.length];
  const { token, status } = joinAndWait(data.concert, fan);
  if (status !== 'active') return;
  const queue = fanHeaders(fan, token);
  const { outcome, seats, conflicts: lost } = buy(data.schedule, queue, 1 + Math.floor(Math.random() * 2), 10);
  conflicts.add(lost);
  if (outcome === 'paid') paidSeats.add(seats.length);
}

export function observe(data) {
  const map = json(http.get(`${API}/schedules/${data.schedule}/seats`, { tags: { name: 'observer map' } }))?.seats || [];
  const taken = map.filter((s) => s.status !== 'available').length;
  if (taken > data.seats) oversold.add(1);
  check(map, { 'observer: the whole map': (m) => m.length === data.seats });
  sleep(1);
}

export function teardown(data) {
  // Every fan's reservations of this schedule, through the API: no seat in two paid ones.
  const owner = {};
  let paid = 0;
  for (let i = 0; i < FANS; i++) {
    const res = http.get(`${API}/users/me/reservations?size=100`, { ...fanHeaders(ALL_FANS[i]), tags: { name: 'my reservations' } });
    for (const r of json(res)?.items || []) {
      if (r.schedule_id !== data.schedule || !['paid', 'confirmed'].includes(r.status)) continue;
      for (const seat of r.seat_ids) {
        paid += 1;
        if (owner[seat] !== undefined && owner[seat] !== i) oversold.add(1);
        owner[seat] = i;
      }
    }
  }
  const map = json(http.get(`${API}/schedules/${data.schedule}/seats`))?.seats || [];
  const taken = map.filter((s) => s.status !== 'available').length;
  check(null, {
    'no seat paid by two fans': () => Object.keys(owner).length === paid,
    'paid seats ≤ seats on sale': () => paid <= data.seats,
    'the map shows at most the seats on sale taken': () => taken <= data.seats,
  });
  console.log(`contention: ${paid} seats paid of ${data.seats}, ${taken} not available on the map`);
}
