// POST /v1/compress under load, one scenario per way of calling it:
//   lossy_raw       raw PNG body, ?mode=lossy
//   lossless_raw    raw PNG body, ?mode=lossless
//   multipart       PNG in multipart field `file`
//   jpeg_raw        raw JPEG body (only when JPEG_IMAGE is set)
// Scenarios run one after another so each one's latency is measured alone; per-scenario
// thresholds make a regression in one mode visible even when the others are fine.
//
//   k6 run -e IMAGE=$PWD/testdata/screenshot.png [-e JPEG_IMAGE=$PWD/photo.jpg] \
//     loadtest/k6/v1_compress.js
//   SCENARIOS=lossless_raw,jpeg_raw restricts the run to those scenarios.
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import {
  authHeaders,
  baseName,
  baseUrl,
  imagePath,
  intEnv,
  p95Threshold,
} from './lib/common.js';

const PNG_PATH = imagePath('IMAGE', { required: true });
const JPEG_PATH = imagePath('JPEG_IMAGE', { required: false });
const png = open(PNG_PATH, 'b');
const jpeg = JPEG_PATH ? open(JPEG_PATH, 'b') : null;

const BASE = baseUrl();
const VUS = intEnv('VUS', 10);
const SECONDS = intEnv('DURATION_SECONDS', 60); // per scenario
const GRACE = 10; // seconds a scenario's last iterations may take before the next one starts

// compressed/original as the server reports it in X-Compression-Ratio; tagged by scenario.
const compressionRatio = new Trend('compression_ratio');

const ALL = ['lossy_raw', 'lossless_raw', 'multipart', 'jpeg_raw'];
const EXEC = {
  lossy_raw: 'lossyRaw',
  lossless_raw: 'losslessRaw',
  multipart: 'multipartUpload',
  jpeg_raw: 'jpegRaw',
};

function selectedScenarios() {
  const wanted = __ENV.SCENARIOS ? __ENV.SCENARIOS.split(',').map((s) => s.trim()) : ALL;
  for (const name of wanted) {
    if (!ALL.includes(name)) {
      throw new Error(`unknown scenario "${name}" in SCENARIOS; known: ${ALL.join(', ')}`);
    }
  }
  // No JPEG given: skip that scenario rather than fail the whole run.
  const names = wanted.filter((name) => name !== 'jpeg_raw' || jpeg !== null);
  if (names.length === 0) {
    throw new Error('no scenario left to run: jpeg_raw needs JPEG_IMAGE to be set');
  }
  return names;
}

function buildScenarios(names) {
  const scenarios = {};
  names.forEach((name, i) => {
    scenarios[name] = {
      executor: 'ramping-vus',
      exec: EXEC[name],
      startTime: `${i * (SECONDS + 20 + GRACE)}s`,
      startVUs: 0,
      stages: [
        { duration: '10s', target: VUS },
        { duration: `${SECONDS}s`, target: VUS },
        { duration: '10s', target: 0 },
      ],
      gracefulRampDown: `${GRACE}s`,
      gracefulStop: `${GRACE}s`,
    };
  });
  return scenarios;
}

function buildThresholds(names) {
  const thresholds = {
    http_req_failed: ['rate<0.01'],
    http_req_duration: [p95Threshold()],
    checks: ['rate>0.99'],
  };
  for (const name of names) {
    thresholds[`http_req_duration{scenario:${name}}`] = [p95Threshold()];
    thresholds[`checks{scenario:${name}}`] = ['rate>0.99'];
  }
  return thresholds;
}

const NAMES = selectedScenarios();

export const options = {
  scenarios: buildScenarios(NAMES),
  thresholds: buildThresholds(NAMES),
};

function compress(query, body, contentType, name) {
  const headers = Object.assign({}, authHeaders());
  if (contentType) {
    headers['Content-Type'] = contentType;
  }
  const res = http.post(`${BASE}/v1/compress${query}`, body, {
    headers,
    // Only headers are checked; not keeping the body saves memory at high VU counts.
    responseType: 'none',
    tags: { name },
  });
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has X-Original-Size': (r) => r.headers['X-Original-Size'] !== undefined,
    'has X-Compressed-Size': (r) => r.headers['X-Compressed-Size'] !== undefined,
    'has X-Compression-Ratio': (r) => r.headers['X-Compression-Ratio'] !== undefined,
  });
  const ratio = parseFloat(res.headers['X-Compression-Ratio']);
  if (Number.isFinite(ratio)) {
    compressionRatio.add(ratio);
  }
}

export function lossyRaw() {
  compress('?mode=lossy', png, 'image/png', 'POST /v1/compress?mode=lossy');
}

export function losslessRaw() {
  compress('?mode=lossless', png, 'image/png', 'POST /v1/compress?mode=lossless');
}

export function multipartUpload() {
  // k6 builds multipart/form-data (with its boundary) itself when the body holds an http.file.
  const body = { file: http.file(png, baseName(PNG_PATH), 'image/png') };
  compress('', body, null, 'POST /v1/compress (multipart)');
}

export function jpegRaw() {
  compress('', jpeg, 'image/jpeg', 'POST /v1/compress (jpeg)');
}
