// A short spike well above what one instance can compress, to check load shedding: the service
// must answer either 200 or 503 with Retry-After, never time out, reset or 5xx otherwise.
// An open model (arrival rate) is used on purpose: with a fixed number of VUs, slow responses
// would throttle the load and the queue might never fill.
//
//   k6 run -e IMAGE=$PWD/testdata/screenshot.png loadtest/k6/overload.js
//   RATE (requests/s at the peak, default 100) and MAX_VUS (default 300) tune the spike.
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { authHeaders, baseUrl, imagePath, intEnv } from './lib/common.js';

const image = open(imagePath('IMAGE', { required: true }), 'b');

const BASE = baseUrl();
const RATE = intEnv('RATE', 100);
const MAX_VUS = intEnv('MAX_VUS', 300);

// Share of requests shed with 503. A Rate (fed on every response, not only on 503s) so the
// metric always has samples and its threshold is really evaluated.
const shed = new Rate('overload_503');

// 503 is the expected answer to overload here, so k6 must not count it in http_req_failed.
http.setResponseCallback(http.expectedStatuses(200, 503));

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: 1,
      timeUnit: '1s',
      preAllocatedVUs: Math.min(50, MAX_VUS),
      maxVUs: MAX_VUS,
      stages: [
        { duration: '5s', target: RATE },
        { duration: '20s', target: RATE },
        { duration: '5s', target: 0 },
      ],
      gracefulStop: '30s',
    },
  },
  thresholds: {
    // Every response is 200 or 503 + Retry-After: no timeouts, resets or other statuses.
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
    // The spike must actually have triggered shedding, or this run proved nothing.
    overload_503: ['rate>0'],
  },
};

function retryAfterValid(value) {
  // Retry-After is either delay-seconds or an HTTP date.
  return value !== undefined && (/^\d+$/.test(value.trim()) || !Number.isNaN(Date.parse(value)));
}

export default function () {
  const res = http.post(`${BASE}/v1/compress?mode=lossy`, image, {
    headers: Object.assign({ 'Content-Type': 'image/png' }, authHeaders()),
    responseType: 'none',
    tags: { name: 'POST /v1/compress (spike)' },
  });
  shed.add(res.status === 503);
  check(res, {
    '200, or 503 with Retry-After': (r) =>
      r.status === 200 || (r.status === 503 && retryAfterValid(r.headers['Retry-After'])),
  });
}
