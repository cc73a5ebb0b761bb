// Settings shared by every script: where the service is, which image to send, and auth.
// Everything comes from environment variables (`k6 run -e NAME=value` or the shell's env).

// BASE_URL wins; API_HOST is what the old Go clients were configured with (host:port or a URL).
export function baseUrl() {
  let url = __ENV.BASE_URL || __ENV.API_HOST || 'http://127.0.0.1:8080';
  if (!/^https?:\/\//.test(url)) {
    url = `http://${url}`;
  }
  return url.replace(/\/+$/, '');
}

// k6 resolves a relative open() path against the script (or module) location, not against the
// shell's working directory. People expect IMAGE=testdata/x.png to mean "from where I am", so
// relative paths are made absolute with $PWD, which k6 passes through from the environment.
export function imagePath(name, { required }) {
  const value = __ENV[name];
  if (!value) {
    if (required) {
      throw new Error(
        `${name} is not set: pass the image to upload, e.g. ` +
          `k6 run -e ${name}=$PWD/testdata/screenshot.png <script>`,
      );
    }
    return null;
  }
  const absolute = value.startsWith('/') || /^[A-Za-z]:[\\/]/.test(value);
  if (absolute || !__ENV.PWD) {
    return value;
  }
  return `${__ENV.PWD.replace(/\/+$/, '')}/${value}`;
}

export function intEnv(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const n = parseInt(raw, 10);
  if (!Number.isFinite(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return n;
}

// Optional bearer token; the header is left out entirely when API_KEY is unset so the same script
// works against an open service.
export function authHeaders() {
  return __ENV.API_KEY ? { Authorization: `Bearer ${__ENV.API_KEY}` } : {};
}

// The latency threshold, overridable because lossless PNG and big images are legitimately slower.
export function p95Threshold() {
  return `p(95)<${intEnv('P95_MS', 2000)}`;
}

// The file name sent in multipart uploads: the last path component of the image.
export function baseName(path) {
  return path.split(/[\\/]/).pop();
}
