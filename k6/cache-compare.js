// Cache hit against miss for the concert details (GET /concerts/{id}) and the seat map, one
// after the other in one run: `miss` reads each of CONCERTS (default 300) concerts once (the
// first read of each is a miss), `hit` then reads one concert over and over, `map` reads one
// seat map of SEATS (default 5,000) seats over and over (the layout kept per process, the
// states from Redis). Compare http_req_duration{scenario:miss} with {scenario:hit}.
//   scripts/k6.sh cache-compare
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { API, adminHeaders, createSale } from './lib/common.js';

const CONCERTS = Number(__ENV.CONCERTS || 300);
const SEATS = Number(__ENV.SEATS || 5000);

export const options = {
  setupTimeout: '300s',
  scenarios: {
    miss: { executor: 'shared-iterations', vus: 1, iterations: CONCERTS, maxDuration: '120s' },
    hit: { executor: 'constant-vus', vus: 1, duration: '15s', startTime: '15s', exec: 'hit' },
    map: { executor: 'constant-vus', vus: 1, duration: '15s', startTime: '31s', exec: 'map' },
  },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{scenario:hit}': ['p(95)<50'],
    'http_req_duration{scenario:miss}': ['p(95)<200'],
    'http_req_duration{scenario:map}': ['p(95)<500'],
    checks: ['rate==1'],
  },
};

export function setup() {
  const admin = adminHeaders();
  const ids = [];
  for (let i = 0; i < CONCERTS; i++) {
    const res = http.post(`${API}/concerts`, JSON.stringify({ title: `Cache compare ${i}` }), admin);
    ids.push(res.json('id'));
  }
  const sale = createSale(admin, 'Cache compare: seat map', SEATS);
  const map = http.get(`${API}/schedules/${sale.schedule}/seats`);
  check(map, { 'the map has every seat': (r) => r.json('seats').length === sale.seats });
  console.log(`seat map: ${map.json('seats').length} seats, ${map.body.length} bytes`);
  return { ids, hot: sale.concert, schedule: sale.schedule };
}

// `miss` first (each id once: never a hit), then `hit` (from 15 s), then `map` (from 31 s).
export default function (data) {
  const id = data.ids[exec.scenario.iterationInTest % data.ids.length];
  check(http.get(`${API}/concerts/${id}`, { tags: { name: 'concert' } }), { 'concert 200': (r) => r.status === 200 });
}

export function hit(data) {
  check(http.get(`${API}/concerts/${data.hot}`, { tags: { name: 'concert' } }), { 'concert 200': (r) => r.status === 200 });
}

export function map(data) {
  check(http.get(`${API}/schedules/${data.schedule}/seats`, { tags: { name: 'seat map' } }), { 'map 200': (r) => r.status === 200 });
}
