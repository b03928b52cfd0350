// GET /api/v1/concerts/{id}: cache-miss latency, cache-hit latency and cached throughput.
//   SCENARIO=miss       each concert once (the first read of each is a miss), 1 VU
//   SCENARIO=hit        one concert over and over (hits), 1 VU, for latency
//   SCENARIO=throughput one concert, VUS virtual users, for requests per second
//   SCENARIO=floor      GET /health/live over and over, 1 VU: the HTTP round trip alone, the
//                       least any cached response can cost
// Loopback only: BASE_URL defaults to http://127.0.0.1:8080. Used by scripts/bench-catalog.sh.
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const SCENARIO = __ENV.SCENARIO || 'hit';
const MISSES = Number(__ENV.MISSES || 1000);

const scenarios = {
  miss: { executor: 'shared-iterations', vus: 1, iterations: MISSES, maxDuration: '120s' },
  hit: { executor: 'constant-vus', vus: 1, duration: __ENV.DURATION || '10s' },
  floor: { executor: 'constant-vus', vus: 1, duration: __ENV.DURATION || '10s' },
  throughput: { executor: 'constant-vus', vus: Number(__ENV.VUS || 32), duration: __ENV.DURATION || '20s' },
};

export const options = {
  scenarios: { [SCENARIO]: scenarios[SCENARIO] },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  thresholds: { checks: ['rate==1'] },
};

export function setup() {
  const ids = [];
  if (SCENARIO === 'floor') return { ids };
  for (let page = 1; ids.length < MISSES; page++) {
    const res = http.get(`${BASE}/api/v1/concerts?page=${page}&size=100`);
    const items = res.json('items');
    if (!items || items.length === 0) break;
    for (const c of items) ids.push(c.id);
  }
  return { ids };
}

export default function (data) {
  const i = SCENARIO === 'miss' ? exec.scenario.iterationInTest : 0;
  const url = SCENARIO === 'floor' ? `${BASE}/health/live` : `${BASE}/api/v1/concerts/${data.ids[i % data.ids.length]}`;
  const res = http.get(url);
  check(res, { 'status 200': (r) => r.status === 200 });
}
