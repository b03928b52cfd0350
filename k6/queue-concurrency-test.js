// The waiting room under a burst: FANS fans (default all seeded) join one concert within a
// second; the promoter admits them at IMTICKET_QUEUE_PROMOTE_PER_SECOND with at most
// IMTICKET_QUEUE_ACTIVE_CAPACITY active; each polls as told until active, then leaves
// (DELETE /queue) to free the slot. Checks: every join answered, every fan admitted once,
// positions in 1..FANS, no status request before its poll_after_seconds.
//   RATE=100 CAPACITY=50 scripts/k6.sh queue-concurrency-test
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { API, FANS as ALL_FANS, adminHeaders, createSale, fanHeaders, json } from './lib/common.js';

const FANS = Math.min(Number(__ENV.FANS || ALL_FANS.length), ALL_FANS.length);
const admitted = new Counter('queue_fans_admitted');
const badPosition = new Counter('queue_bad_positions');
const wait = new Trend('queue_wait_to_active', true);
const polls = new Counter('queue_status_polls');

export const options = {
  setupTimeout: '120s',
  scenarios: {
    burst: { executor: 'per-vu-iterations', vus: FANS, iterations: 1, maxDuration: __ENV.MAX_DURATION || '10m' },
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:join}': ['p(95)<2000'],
    queue_fans_admitted: [`count==${FANS}`],
    queue_bad_positions: ['count==0'],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  return createSale(adminHeaders(), `Queue burst ${new Date().toISOString()}`, 10);
}

export default function (data) {
  const fan = ALL_FANS[(exec.vu.idInTest - 1) % ALL_FANS.length];
  sleep(Math.random());
  const started = Date.now();
  const joined = http.post(`${API}/concerts/${data.concert}/queue`, null, { ...fanHeaders(fan), tags: { name: 'join' } });
  check(joined, { 'join 200': (r) => r.status === 200 });
  let status = json(joined);
  if (!status?.queue_token) return;
  const queue = fanHeaders(fan, status.queue_token);
  if (status.status === 'waiting' && !(status.position >= 1 && status.position <= FANS)) badPosition.add(1);
  while (status && status.status === 'waiting') {
    sleep(Math.max(status.poll_after_seconds || 1, 0.1));
    polls.add(1);
    const res = http.get(`${API}/queue/status`, { ...queue, tags: { name: 'status' } });
    check(res, { 'status 200': (r) => r.status === 200 });
    status = json(res);
    if (status?.status === 'waiting' && !(status.position >= 1 && status.position <= FANS)) badPosition.add(1);
  }
  if (check(status, { 'admitted': (s) => s?.status === 'active' })) {
    admitted.add(1);
    wait.add(Date.now() - started);
  }
  const left = http.del(`${API}/queue`, null, { ...queue, tags: { name: 'leave' } });
  check(left, { 'leave 204': (r) => r.status === 204 });
}
