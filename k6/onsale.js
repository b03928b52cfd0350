// The on-sale: thousands of fans join the pre-queue before the sale opens, are shuffled into
// the line at the opening, admitted at the configured rate (IMTICKET_QUEUE_PROMOTE_PER_SECOND),
// and each, once active, reads the seat map, holds 1–2 free seats (trying others after a 409)
// and pays, until the schedule is sold out. Run it with scripts/k6.sh onsale (boots the
// system, seeds the fans, runs this, then `imticket-admin audit`).
//
// Env: BASE_URL (http://127.0.0.1:8080), FANS_FILE (JSON written by `imticket-admin seed
// --tokens-out`; each fan already has points), FANS (how many of them take part: all),
// SEATS (seats on sale, 1000), OPEN_IN (seconds from set-up to the opening, 20),
// ADMIN_EMAIL / ADMIN_PASSWORD (run.sh's development admin), SUMMARY (summary JSON path).
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { API, FANS as ALL_FANS, adminHeaders, buy, createSale, fanHeaders, joinAndWait } from './lib/common.js';

const FANS = Math.min(Number(__ENV.FANS || ALL_FANS.length), ALL_FANS.length);
const SEATS = Number(__ENV.SEATS || 1000);
const OPEN_IN = Number(__ENV.OPEN_IN || 20);

const tickets = new Counter('onsale_tickets');
const seatsSold = new Counter('onsale_seats_sold');
const soldOutFans = new Counter('onsale_fans_sold_out');
const holdConflicts = new Counter('onsale_hold_conflicts');
const waitToActive = new Trend('onsale_wait_to_active', true);
const activeToTicket = new Trend('onsale_active_to_ticket', true);

// 409 (a seat someone else took, the cap) and 402 are answers the flow handles, not failures.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 402, 409));

export const options = {
  setupTimeout: '120s',
  scenarios: {
    onsale: {
      executor: 'per-vu-iterations',
      vus: FANS,
      iterations: 1,
      maxDuration: __ENV.MAX_DURATION || '10m',
    },
  },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:hold}': ['p(95)<3000'],
    'http_req_duration{name:pay}': ['p(95)<3000'],
    'http_req_duration{name:status}': ['p(95)<3000'],
    checks: ['rate>0.99'],
  },
};

export function setup() {
  const opensAt = new Date(Date.now() + OPEN_IN * 1000);
  const sale = createSale(adminHeaders(), `On-sale ${opensAt.toISOString()}`, SEATS, opensAt);
  return { ...sale, opensAt: opensAt.getTime() };
}

export default function (data) {
  const fan = ALL_FANS[(exec.vu.idInTest - 1) % ALL_FANS.length];
  // Fans arrive over the seconds before the opening, then wait for their turn as told.
  sleep(Math.random() * Math.max(1, OPEN_IN - 5));
  const { token, status } = joinAndWait(data.concert, fan);
  if (status !== 'active') {
    if (status === 'sold_out' || status === 'expired') soldOutFans.add(1);
    return;
  }
  const queue = fanHeaders(fan, token);
  const active = Date.now();
  waitToActive.add(active - Math.max(data.opensAt, 0));
  const { outcome, seats, conflicts } = buy(data.schedule, queue, 1 + Math.floor(Math.random() * 2));
  holdConflicts.add(conflicts);
  if (outcome === 'sold_out') {
    soldOutFans.add(1);
    http.del(`${API}/queue`, null, { headers: queue.headers, tags: { name: 'leave' } });
  } else if (outcome === 'paid') {
    tickets.add(1);
    seatsSold.add(seats.length);
    activeToTicket.add(Date.now() - active);
  }
}

export function handleSummary(data) {
  const m = (name, field) => (data.metrics[name] ? data.metrics[name].values[field] : 0);
  const line = [
    `on-sale: ${FANS} fans, ${m('onsale_tickets', 'count')} tickets (${m('onsale_seats_sold', 'count')} seats)`,
    `${m('onsale_fans_sold_out', 'count')} fans found it sold out, ${m('onsale_hold_conflicts', 'count')} hold conflicts`,
    `http ${m('http_reqs', 'count')} requests (${m('http_reqs', 'rate').toFixed(0)}/s), failed ${(100 * m('http_req_failed', 'rate')).toFixed(2)}%`,
    `wait to active p50 ${(m('onsale_wait_to_active', 'med') / 1000).toFixed(1)} s, p95 ${(m('onsale_wait_to_active', 'p(95)') / 1000).toFixed(1)} s`,
    `hold p95 ${m('http_req_duration{name:hold}', 'p(95)').toFixed(1)} ms, pay p95 ${m('http_req_duration{name:pay}', 'p(95)').toFixed(1)} ms`,
  ].join('\n');
  return {
    stdout: `${line}\n`,
    [__ENV.SUMMARY || 'onsale-summary.json']: JSON.stringify(data, null, 2),
  };
}
