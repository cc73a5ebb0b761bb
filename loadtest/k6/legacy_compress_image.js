// The legacy endpoint, called exactly the way the old Go clients did:
//   POST /compress-image?strategy=pngquant, multipart, file in `image_files`, plus a form field
//   `strategy=bimg` that the server ignores; only the query parameter counts.
// The response is the compressed PNG; the report is JSON in the X-Compression-Metadata header.
//
//   k6 run -e IMAGE=$PWD/testdata/screenshot.png loadtest/k6/legacy_compress_image.js
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import { authHeaders, baseUrl, imagePath, intEnv, p95Threshold } from './lib/common.js';

// open() only works in the init context, so the image is read once per VU here.
const image = open(imagePath('IMAGE', { required: true }), 'b');

const BASE = baseUrl();
const VUS = intEnv('VUS', 10);

// Whatever the legacy report calls size_difference, recorded as-is so runs can be compared.
const compressionRatio = new Trend('compression_ratio');

export const options = {
  stages: [
    { duration: '30s', target: VUS },
    { duration: '1m', target: VUS },
    { duration: '30s', target: 0 },
  ],
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: [p95Threshold()],
    checks: ['rate>0.99'],
  },
};

function parseMetadata(res) {
  const raw = res.headers['X-Compression-Metadata'];
  if (!raw) {
    return null;
  }
  try {
    return JSON.parse(raw);
  } catch (_) {
    return null;
  }
}

export default function () {
  const body = {
    image_files: http.file(image, 'screenshot.png', 'image/png'),
    strategy: 'bimg',
  };
  const res = http.post(`${BASE}/compress-image?strategy=pngquant`, body, {
    headers: authHeaders(),
    // Only headers are checked; not keeping the body saves memory at high VU counts.
    responseType: 'none',
    tags: { name: 'POST /compress-image' },
  });

  const meta = parseMetadata(res);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'Content-Type is image/png': (r) =>
      (r.headers['Content-Type'] || '').split(';')[0].trim().toLowerCase() === 'image/png',
    'X-Compression-Metadata status is success': () => meta !== null && meta.status === 'success',
  });

  const diff = meta && meta.data ? Number(meta.data.size_difference) : NaN;
  if (Number.isFinite(diff)) {
    compressionRatio.add(diff);
  }
}
