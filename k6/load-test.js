// A steady mix of what fans do on a busy day, ramping up and down: browse the catalog
// (list, details, seat map), join a concert's line, hold a seat and pay, or hold and cancel.
// The concert is on sale now with SEATS (default 20,000) seats so it does not sell out; the
// fans are the seeded ones (each fan holds at most IMTICKET_MAX_SEATS_PER_USER seats, so a
// fan past the cap gets 409 seat_limit_reached, an expected answer).
//   scripts/k6.sh load-test        VUS (default 50) at the peak, DURATION of the plateau (60s)
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { API, FANS, adminHeaders, createSale, fanHeaders, joinAndWait, json } from './lib/common.js';

const SEATS = Number(__ENV.SEATS || 20000);
const VUS = Number(__ENV.VUS || 50);
const paid = new Counter('load_paid');
const cancelled = new Counter('load_cancelled');

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export const options = {
  setupTimeout: '180s',
  scenarios: {
    mix: {
      executor: 'ramping-vus',
      startVUs: 1,
      stages: [
        { duration: '15s', target: VUS },
        { duration: __ENV.DURATION || '60s', target: VUS },
        { duration: '10s', target: 0 },
      ],
    },
  },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<1500'],
    'http_req_duration{name:hold}': ['p(95)<1000'],
    'http_req_duration{name:pay}': ['p(95)<1000'],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  return createSale(adminHeaders(), `Load test ${new Date().toISOString()}`, SEATS);
}

export default function (data) {
  const fan = FANS[exec.scenario.iterationInTest % FANS.length];
  // Browse: the catalog, the concert, its seat map.
  check(http.get(`${API}/concerts?page=1&size=20`, { tags: { name: 'list' } }), { 'list 200': (r) => r.status === 200 });
  check(http.get(`${API}/concerts/${data.concert}`, { tags: { name: 'concert' } }), { 'concert 200': (r) => r.status === 200 });
  const map = http.get(`${API}/schedules/${data.schedule}/seats`, { tags: { name: 'seat map' } });
  check(map, { 'seat map 200': (r) => r.status === 200 });
  sleep(Math.random());
  if (Math.random() < 0.5) return; // half of the visitors only browse
  const { token, status } = joinAndWait(data.concert, fan, 60);
  if (status !== 'active') return;
  const queue = fanHeaders(fan, token);
  const free = (json(map)?.seats || []).filter((s) => s.status === 'available');
  if (free.length === 0) return;
  const seat = free[Math.floor(Math.random() * free.length)].id;
  const hold = http.post(`${API}/reservations`, JSON.stringify({ schedule_id: data.schedule, seat_ids: [seat] }),
    { headers: queue.headers, tags: { name: 'hold' } });
  if (hold.status !== 201) return; // 409: taken meanwhile, or this fan's cap
  sleep(Math.random());
  if (Math.random() < 0.7) {
    const pay = http.post(`${API}/reservations/${hold.json('id')}/payments`, null,
      { headers: { ...queue.headers, 'idempotency-key': `load-${hold.json('id')}` }, tags: { name: 'pay' } });
    if (check(pay, { 'pay 201': (r) => r.status === 201 })) paid.add(1);
  } else {
    const cancel = http.del(`${API}/reservations/${hold.json('id')}`, null, { headers: queue.headers, tags: { name: 'cancel' } });
    if (check(cancel, { 'cancel 204': (r) => r.status === 204 })) cancelled.add(1);
    http.del(`${API}/queue`, null, { headers: queue.headers, tags: { name: 'leave' } });
  }
}
