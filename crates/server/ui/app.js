// The compressor page. Files are queued and sent, at most three at a time, to this same server:
// images to POST /v1/compress, videos (and GIFs to be turned into video) to POST
// /v1/video/compress; the answers are shown, zipped and compared here. No other host is ever
// contacted (the server's Content-Security-Policy would refuse it anyway).
"use strict";

// What the service reads, from the server's format tables (/ui/formats.js is written by the
// server): image media types with the extension a pasted file is named with, file name
// extensions, and the video containers.
const { imageTypes, imageExtensions, videoTypes, videoExtensions, readable } = FORMATS;
const extensionOf = (name) => (name.lastIndexOf(".") > 0 ? name.slice(name.lastIndexOf(".") + 1).toLowerCase() : "");
const AT_ONCE = 3;
const OPTIONS_KEY = "compressor.options";
// Version 2: "Measure quality" became opt-in. Options saved by an earlier page carry its old
// default (on), which nobody chose, so there the score is left off.
const OPTIONS_VERSION = 2;
const API_KEY = "compressor.apiKey";

const $ = (id) => document.getElementById(id);
const items = [];
let running = 0;
let nextId = 1;
let keyPrompt = null;

// ---- options, remembered in this browser -------------------------------------------------------

function readOptions() {
  const f = $("options");
  return {
    mode: f.querySelector("input[name=mode]:checked").value,
    quality: f.quality.value.trim(),
    format: f.format.value,
    metadata: f.metadata.value,
    target_quality: f.target_quality.value.trim(),
    max_bytes: f.max_bytes.value.trim(),
    width: f.width.value.trim(),
    height: f.height.value.trim(),
    fit: f.fit.value,
    enlarge: f.enlarge.checked,
    score: f.score.checked,
    video_format: f.video_format.value,
    gif_as: f.gif_as.value,
    audio: f.audio.checked,
  };
}

function loadOptions() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(OPTIONS_KEY) || "null");
  } catch (_) {
    saved = null;
  }
  if (!saved) return;
  const f = $("options");
  for (const radio of f.querySelectorAll("input[name=mode]")) radio.checked = radio.value === saved.mode;
  for (const name of ["quality", "format", "metadata", "target_quality", "max_bytes", "width", "height", "fit", "video_format", "gif_as"]) {
    if (typeof saved[name] === "string") f[name].value = saved[name];
  }
  f.score.checked = saved.version >= OPTIONS_VERSION && saved.score === true;
  f.enlarge.checked = saved.enlarge === true;
  f.audio.checked = saved.audio !== false;
}

function saveOptions() {
  try {
    localStorage.setItem(OPTIONS_KEY, JSON.stringify({ ...readOptions(), version: OPTIONS_VERSION }));
  } catch (_) {
    // Private windows may refuse storage; the options still apply to this visit.
  }
}

// The folded options' one line: the current choices, in words.
const FORMAT_TEXT = { keep: "keep format", auto: "smallest format", webp: "to WebP", avif: "to AVIF", jpeg: "to JPEG", png: "to PNG" };
const METADATA_TEXT = { safe: "safe metadata", strip: "strip metadata", keep: "keep all metadata" };
const FIT_TEXT = { fit: "", cover: " cover", fill: " stretch" };

function describeOptions(o) {
  const parts = [o.mode === "lossless" ? "Lossless" : "Lossy"];
  if (o.quality) parts.push(`quality ${o.quality}`);
  parts.push(FORMAT_TEXT[o.format] || o.format, METADATA_TEXT[o.metadata] || o.metadata);
  if (o.target_quality) parts.push(`target quality ${o.target_quality}`);
  if (o.max_bytes) parts.push(`at most ${bytes(Number(o.max_bytes))}`);
  if (o.width || o.height) {
    parts.push(`resize ${o.width || "auto"}×${o.height || "auto"}${FIT_TEXT[o.fit] || ""}${o.enlarge ? ", may enlarge" : ""}`);
  } else {
    parts.push("no resize");
  }
  if (o.score) parts.push("measure quality");
  if (o.video_format !== "keep") parts.push(`videos as ${o.video_format === "webm" ? "WebM" : "MP4"}`);
  if (o.gif_as !== "image") parts.push(`GIFs as ${o.gif_as === "webm" ? "WebM" : "MP4"}`);
  if (!o.audio) parts.push("no sound");
  return parts.join(" · ");
}

function optionsChanged() {
  $("options-summary").textContent = describeOptions(readOptions());
  scoreColumn();
}

// The score column shows when scores are asked for, or a row already has one.
function scoreColumn() {
  const shown = $("options").score.checked || items.some((i) => i.result && i.result.score !== null);
  $("results").classList.toggle("scored", shown);
}

function query(o) {
  const q = new URLSearchParams();
  if (o.mode !== "lossy") q.set("mode", o.mode);
  if (o.quality) q.set("quality", o.quality);
  if (o.format !== "keep") q.set("format", o.format);
  if (o.metadata !== "safe") q.set("metadata", o.metadata);
  if (o.target_quality) q.set("target_quality", o.target_quality);
  if (o.max_bytes) q.set("max_bytes", o.max_bytes);
  if (o.width) q.set("width", o.width);
  if (o.height) q.set("height", o.height);
  if ((o.width || o.height) && o.fit !== "fit") q.set("fit", o.fit);
  if ((o.width || o.height) && o.enlarge) q.set("enlarge", "true");
  if (o.score && o.mode === "lossy") q.set("score", "true");
  return q.toString();
}

// Where a file goes, with its query: the video service for videos and for GIFs to be turned
// into video, the image service for the rest.
function endpoint(item) {
  const o = item.options;
  if (!sentAsVideo(item)) return `/v1/compress?${query(o)}`;
  const q = new URLSearchParams();
  const format = isGif(item.file) ? o.gif_as : o.video_format;
  if (format !== "keep") q.set("format", format);
  // Videos take one quality; of an image range, its upper end.
  const quality = o.quality.split("-").pop().trim();
  if (quality) q.set("quality", quality);
  if (o.target_quality) q.set("target_quality", o.target_quality);
  if (!o.audio) q.set("audio", "false");
  return `/v1/video/compress?${q}`;
}

// ---- formatting ----------------------------------------------------------------------------------

function bytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function saved(before, after) {
  return before > 0 ? `${((1 - after / before) * 100).toFixed(1)}%` : "";
}

function element(tag, attributes = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function notice(text, bad = false) {
  const n = $("notice");
  n.textContent = text;
  n.classList.toggle("bad", bad);
}

// ---- adding files ----------------------------------------------------------------------------------

function looksLikeImage(file) {
  if (file.type) return file.type in imageTypes;
  return imageExtensions.includes(extensionOf(file.name));
}

function looksLikeVideo(file) {
  if (file.type && videoTypes.includes(file.type)) return true;
  return !(file.type in imageTypes) && videoExtensions.includes(extensionOf(file.name));
}

function isGif(file) {
  return file.type === "image/gif" || (!file.type && /\.gif$/i.test(file.name));
}

function accepted(file) {
  return looksLikeImage(file) || looksLikeVideo(file);
}

function sentAsVideo(item) {
  return looksLikeVideo(item.file) || (isGif(item.file) && item.options.gif_as !== "image");
}

function addFiles(files) {
  const list = Array.from(files);
  if (!list.length) return;
  for (const file of list) {
    const id = nextId++;
    const name = file.name || `pasted-${id}.${imageTypes[file.type] || "png"}`;
    const item = { id, file, name, state: "queued", progress: 0, message: "", result: null, options: readOptions() };
    item.originalUrl = URL.createObjectURL(file);
    item.row = row(item);
    $("results").tBodies[0].append(item.row.tr);
    items.push(item);
    if (accepted(file)) {
      render(item);
    } else {
      // The server recognises formats by content, but a file that says it is something else
      // entirely is refused here, without uploading it.
      fail(item, `Not a file this service reads (${file.type}): use ${readable}.`);
    }
  }
  notice(`${list.length} file${list.length === 1 ? "" : "s"} added.`);
  totals();
  pump();
  // The new rows are where the person is looking (the page only scrolls if they are not).
  const first = items[items.length - list.length].row.tr;
  const box = first.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) first.scrollIntoView({ block: "nearest" });
}

// ---- the queue -------------------------------------------------------------------------------------

function pump() {
  while (running < AT_ONCE) {
    const item = items.find((i) => i.state === "queued");
    if (!item) return;
    running += 1;
    send(item).finally(() => {
      running -= 1;
      pump();
    });
  }
}

function requeue(item) {
  if (item.state === "removed") return;
  item.state = "queued";
  render(item);
  pump();
}

function storedKey() {
  try {
    return localStorage.getItem(API_KEY) || "";
  } catch (_) {
    return "";
  }
}

function retryAfterSeconds(xhr) {
  const value = Number.parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
  return Number.isFinite(value) && value >= 0 ? Math.min(value, 60) : 2;
}

async function errorMessage(xhr) {
  try {
    const text = await xhr.response.text();
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return body.error.message;
    return text || `${xhr.status} ${xhr.statusText}`;
  } catch (_) {
    return `${xhr.status} ${xhr.statusText || "error"}`;
  }
}

// The upload's own name (not the server's safe ASCII copy of it) with the extension of the name
// the server gave the output: the service's one naming rule, which keeps an extension that
// already says the output's format (photo.jpeg stays photo.jpeg) and replaces any other.
function outputName(name, disposition) {
  const given = /filename="([^"]*)"/.exec(disposition || "");
  const extension = (given && extensionOf(given[1])) || "bin";
  const stem = name.lastIndexOf(".") > 0 ? name.slice(0, name.lastIndexOf(".")) : name;
  const own = name.slice(stem.length + 1);
  return `${stem}.${own.toLowerCase() === extension ? own : extension}`;
}

function send(item) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", endpoint(item));
    xhr.responseType = "blob";
    const key = storedKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    item.state = "uploading";
    item.progress = 0;
    render(item);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && item.state === "uploading") {
        item.progress = e.loaded / e.total;
        render(item);
      }
    };
    xhr.upload.onload = () => {
      if (item.state === "uploading") {
        item.state = sentAsVideo(item) ? "transcoding" : "compressing";
        render(item);
      }
    };
    xhr.onerror = () => {
      fail(item, "The server could not be reached.");
      resolve();
    };
    xhr.onload = async () => {
      if (item.state === "removed") return resolve();
      if (xhr.status === 200) {
        finish(item, xhr);
      } else if (xhr.status === 503 || xhr.status === 429) {
        // Busy or rate limited: wait as long as the server says, then try again.
        const wait = retryAfterSeconds(xhr);
        item.state = "waiting";
        item.message = `${xhr.status === 503 ? "Server busy" : "Rate limited"}: retrying in ${wait} s`;
        render(item);
        setTimeout(() => requeue(item), wait * 1000);
      } else if (xhr.status === 401) {
        const why = await errorMessage(xhr);
        item.state = "needs-key";
        render(item);
        askForKey(key ? `The key was refused: ${why}` : why);
      } else {
        fail(item, await errorMessage(xhr));
      }
      resolve();
    };
    // A form, so that the server sees the file's name and names the output by its rule.
    const form = new FormData();
    form.append("file", item.file, item.name);
    xhr.send(form);
  });
}

function finish(item, xhr) {
  const header = (name) => xhr.getResponseHeader(name);
  const type = header("Content-Type") || "application/octet-stream";
  const blob = new Blob([xhr.response], { type });
  const score = Number.parseFloat(header("X-Quality-Score") || "");
  item.result = {
    blob,
    url: URL.createObjectURL(blob),
    size: Number.parseInt(header("X-Compressed-Size") || `${blob.size}`, 10),
    original: Number.parseInt(header("X-Original-Size") || `${item.file.size}`, 10),
    score: Number.isFinite(score) ? score : null,
    method: header("X-Compression-Method") || "",
    imageSize: header("X-Image-Size") || header("X-Video-Size") || "",
    duration: Number.parseFloat(header("X-Duration-Seconds") || ""),
    video: type.startsWith("video/"),
    resizedFrom: header("X-Resized-From") || "",
    filename: outputName(item.name, header("Content-Disposition")),
  };
  item.state = "done";
  item.message = "";
  render(item);
  totals();
  scoreColumn();
}

function fail(item, message) {
  item.state = "error";
  item.message = message;
  render(item);
  totals();
}

// ---- the API key -----------------------------------------------------------------------------------

function askForKey(reason) {
  if (keyPrompt) return keyPrompt;
  const dialog = $("key-dialog");
  $("key-reason").textContent = `${reason} Enter the key you were given; it is kept in this browser only.`;
  $("key").value = "";
  dialog.returnValue = "";
  keyPrompt = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        keyPrompt = null;
        const entered = $("key").value.trim();
        const waiting = items.filter((i) => i.state === "needs-key");
        if (dialog.returnValue === "save" && entered) {
          try {
            localStorage.setItem(API_KEY, entered);
          } catch (_) {
            // Kept for this visit only.
          }
          waiting.forEach(requeue);
          resolve(true);
        } else {
          waiting.forEach((i) => fail(i, "No API key: this server needs one."));
          resolve(false);
        }
      },
      { once: true },
    );
    dialog.showModal();
    $("key").focus();
  });
  return keyPrompt;
}

// ---- rows ------------------------------------------------------------------------------------------

function row(item) {
  const tr = element("tr", { "data-id": `${item.id}` });
  const cells = {};
  for (const [name, label, cls] of [
    ["preview", "Preview", "preview"],
    ["name", "File", "name"],
    ["status", "Status", "status"],
    ["original", "Original", "num"],
    ["compressed", "Compressed", "num"],
    ["saved", "Saved", "num"],
    ["score", "SSIMULACRA2", "num score"],
    ["method", "Method", "method"],
    ["actions", "Actions", "actions"],
  ]) {
    cells[name] = element("td", { class: cls, "data-label": label });
    tr.append(cells[name]);
  }
  const thumb = looksLikeVideo(item.file)
    ? element("video", { src: item.originalUrl, muted: "", preload: "metadata", "aria-hidden": "true" })
    : element("img", { alt: "", src: item.originalUrl, loading: "lazy", decoding: "async" });
  cells.preview.append(thumb);
  cells.name.textContent = item.name;
  cells.original.textContent = bytes(item.file.size);
  return { tr, cells };
}

const STATE_TEXT = {
  queued: "Queued",
  uploading: "Uploading",
  compressing: "Compressing…",
  transcoding: "Transcoding…",
  waiting: "Waiting",
  "needs-key": "Needs an API key",
  done: "Done",
  error: "Failed",
};

function render(item) {
  const { cells, tr } = item.row;
  tr.dataset.state = item.state;
  cells.status.replaceChildren();
  const label = element("span", { class: `state-${item.state}` }, item.message || STATE_TEXT[item.state] || item.state);
  cells.status.append(label);
  if (item.state === "uploading") {
    label.textContent = `Uploading ${Math.round(item.progress * 100)}%`;
    const bar = element("span", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": `${Math.round(item.progress * 100)}`, "aria-label": `Uploading ${item.name}` });
    const fill = element("i");
    fill.style.width = `${item.progress * 100}%`;
    bar.append(fill);
    cells.status.append(bar);
  }
  const r = item.result;
  cells.compressed.textContent = r ? bytes(r.size) : "";
  cells.compressed.dataset.bytes = r ? `${r.size}` : "";
  cells.saved.textContent = r ? saved(r.original, r.size) : "";
  cells.score.textContent = r && r.score !== null ? r.score.toFixed(1) : "";
  cells.method.textContent = r ? r.method : "";
  if (r && r.resizedFrom) cells.method.textContent += ` · ${r.resizedFrom.replace("x", "×")} → ${r.imageSize.replace("x", "×")}`;
  if (r && r.video && Number.isFinite(r.duration)) cells.method.textContent += ` · ${r.imageSize.replace("x", "×")}, ${r.duration.toFixed(1)} s`;
  cells.actions.replaceChildren();
  if (r) {
    const link = element("a", { href: r.url, download: r.filename, class: "download" }, "Download");
    link.setAttribute("aria-label", `Download ${r.filename}`);
    const compare = element("button", { type: "button", class: "compare" }, "Compare");
    compare.setAttribute("aria-label", `Compare ${item.name} before and after`);
    compare.addEventListener("click", () => openCompare(item));
    cells.actions.append(link, compare);
  }
}

function totals() {
  const done = items.filter((i) => i.state === "done");
  const failed = items.filter((i) => i.state === "error").length;
  const before = done.reduce((s, i) => s + i.result.original, 0);
  const after = done.reduce((s, i) => s + i.result.size, 0);
  const total = items.length;
  $("total-files").textContent = total
    ? `${done.length} of ${total} file${total === 1 ? "" : "s"} done${failed ? `, ${failed} failed` : ""}`
    : "No files yet";
  $("total-before").textContent = done.length ? bytes(before) : "";
  $("total-after").textContent = done.length ? bytes(after) : "";
  $("total-saved").textContent = done.length ? saved(before, after) : "";
  $("download-all").disabled = done.length === 0;
}

// ---- "Download all": one ZIP, built here ----------------------------------------------------------
// The results are already in this page, so the ZIP is made from them (stored: images are
// compressed already) rather than uploading them again to be zipped by the server, which would
// also have to keep them between requests.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data) {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function zip(entries) {
  const encoder = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;
  const now = new Date();
  const dosTime = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
  const dosDate = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  for (const { name, blob } of entries) {
    const data = new Uint8Array(await blob.arrayBuffer());
    const nameBytes = encoder.encode(name);
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(6, 0x0800, true); // UTF-8 names
    local.setUint16(8, 0, true); // stored
    local.setUint16(10, dosTime, true);
    local.setUint16(12, dosDate, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, nameBytes.length, true);
    parts.push(local, nameBytes, data);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true);
    entry.setUint16(4, 20, true);
    entry.setUint16(6, 20, true);
    entry.setUint16(8, 0x0800, true);
    entry.setUint16(12, dosTime, true);
    entry.setUint16(14, dosDate, true);
    entry.setUint32(16, crc, true);
    entry.setUint32(20, data.length, true);
    entry.setUint32(24, data.length, true);
    entry.setUint16(28, nameBytes.length, true);
    entry.setUint32(42, offset, true);
    central.push(entry, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const centralSize = central.reduce((s, p) => s + p.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

function uniqueNames(done) {
  const seen = new Map();
  return done.map((item) => {
    const name = item.result.filename;
    const count = seen.get(name) || 0;
    seen.set(name, count + 1);
    if (!count) return { name, blob: item.result.blob };
    const dot = name.lastIndexOf(".");
    const renamed = dot > 0 ? `${name.slice(0, dot)} (${count + 1})${name.slice(dot)}` : `${name} (${count + 1})`;
    return { name: renamed, blob: item.result.blob };
  });
}

async function downloadAll() {
  const done = items.filter((i) => i.state === "done");
  if (!done.length) return;
  const archive = await zip(uniqueNames(done));
  const link = element("a", { href: URL.createObjectURL(archive), download: "compressed.zip", id: "zip-link", hidden: "" });
  document.body.append(link);
  link.click();
  // Kept in the page (hidden) so the archive can be fetched again; replaced by the next one.
  const old = document.querySelectorAll("#zip-link");
  for (const o of old) if (o !== link) o.remove();
  notice(`compressed.zip: ${done.length} file${done.length === 1 ? "" : "s"}, ${bytes(archive.size)}.`);
}

// ---- before and after ---------------------------------------------------------------------------

const view = { item: null, scale: 1, fit: true, x: 0, y: 0, width: 0, height: 0, before: null, after: null };
const ZOOMS = [0.125, 0.25, 0.5, 1, 2, 4];

// An image or a video element's own size, and the event that says it is known.
function naturalSize(e) {
  return e.tagName === "VIDEO" ? [e.videoWidth, e.videoHeight] : [e.naturalWidth, e.naturalHeight];
}

function openCompare(item) {
  view.item = item;
  $("compare").hidden = false;
  $("compare-name").textContent = item.name;
  // Videos are compared as videos (played together); a GIF turned into video shows the GIF.
  const before = looksLikeVideo(item.file) ? $("before-video") : $("before");
  const after = item.result.video ? $("after-video") : $("after");
  for (const e of [$("before"), $("before-video"), $("after"), $("after-video")]) {
    e.hidden = e !== before && e !== after;
    if (e.tagName === "VIDEO" && e.hidden) e.pause();
  }
  view.before = before;
  view.after = after;
  $("compare-play").hidden = !(before.tagName === "VIDEO" || after.tagName === "VIDEO");
  $("compare-play").textContent = "Play";
  let loaded = 0;
  const ready = () => {
    loaded += 1;
    if (loaded < 2) return;
    // Compared at the output's size: a resized original is drawn to the same box, cropped
    // from the centre (as cover crops) or stretched (as fill does).
    [view.width, view.height] = naturalSize(after);
    before.style.width = `${view.width}px`;
    before.style.height = `${view.height}px`;
    before.style.objectFit = item.options.fit === "fill" ? "fill" : "cover";
    zoomFit();
  };
  for (const [e, url] of [[before, item.originalUrl], [after, item.result.url]]) {
    e.onload = e.onloadedmetadata = null;
    if (e.tagName === "VIDEO") e.onloadedmetadata = ready;
    else e.onload = ready;
    e.src = url;
  }
  $("compare").scrollIntoView({ block: "nearest" });
  $("split").focus();
}

// Plays or pauses both sides together, the compressed one kept at the original's time.
function togglePlay() {
  const videos = [view.before, view.after].filter((e) => e && e.tagName === "VIDEO");
  if (!videos.length) return;
  const playing = !videos[0].paused;
  if (playing) {
    videos.forEach((v) => v.pause());
  } else {
    const at = videos[0].currentTime;
    videos.forEach((v) => {
      v.currentTime = at;
      v.play().catch(() => {});
    });
  }
  $("compare-play").textContent = playing ? "Play" : "Pause";
}

function layout() {
  const port = $("viewport");
  const w = view.width * view.scale;
  const h = view.height * view.scale;
  // Keep the image over the viewport: centred when smaller, within its edges when larger.
  view.x = w <= port.clientWidth ? (port.clientWidth - w) / 2 : Math.min(0, Math.max(port.clientWidth - w, view.x));
  view.y = h <= port.clientHeight ? (port.clientHeight - h) / 2 : Math.min(0, Math.max(port.clientHeight - h, view.y));
  const transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  view.before.style.transform = transform;
  view.after.style.transform = transform;
  port.classList.toggle("pixels", view.scale >= 1);
  $("zoom-level").textContent = view.fit ? `fit (${Math.round(view.scale * 100)}%)` : `${Math.round(view.scale * 100)}%`;
  split();
}

function split() {
  // The split runs across the image (at any zoom), not across the viewport.
  const port = $("viewport");
  const value = Number($("split").value) / 100;
  const at = Math.min(port.clientWidth, Math.max(0, view.x + value * view.width * view.scale));
  $("after-clip").style.clipPath = `inset(0 0 0 ${at}px)`;
  $("divider").style.left = `${at}px`;
}

function zoomFit() {
  const port = $("viewport");
  if (!view.width) return;
  view.scale = Math.min(1, port.clientWidth / view.width, port.clientHeight / view.height);
  view.fit = true;
  layout();
}

function zoomTo(scale) {
  const port = $("viewport");
  // Zoom about the viewport's centre.
  const cx = (port.clientWidth / 2 - view.x) / view.scale;
  const cy = (port.clientHeight / 2 - view.y) / view.scale;
  view.scale = scale;
  view.fit = false;
  view.x = port.clientWidth / 2 - cx * scale;
  view.y = port.clientHeight / 2 - cy * scale;
  layout();
}

function zoomStep(direction) {
  const next = direction > 0 ? ZOOMS.find((z) => z > view.scale + 1e-9) : [...ZOOMS].reverse().find((z) => z < view.scale - 1e-9);
  if (next) zoomTo(next);
}

function pan(dx, dy) {
  view.x += dx;
  view.y += dy;
  layout();
}

function setUpCompare() {
  $("split").addEventListener("input", split);
  $("compare-play").addEventListener("click", togglePlay);
  // Drift between the two players is corrected as the original plays.
  $("before-video").addEventListener("timeupdate", () => {
    const [a, b] = [view.before, view.after];
    if (a && b && a.tagName === "VIDEO" && b.tagName === "VIDEO" && !a.paused && Math.abs(a.currentTime - b.currentTime) > 0.15) {
      b.currentTime = a.currentTime;
    }
  });
  $("zoom-fit").addEventListener("click", zoomFit);
  $("zoom-1").addEventListener("click", () => zoomTo(1));
  $("zoom-in").addEventListener("click", () => zoomStep(1));
  $("zoom-out").addEventListener("click", () => zoomStep(-1));
  $("compare-close").addEventListener("click", () => {
    $("compare").hidden = true;
    $("before-video").pause();
    $("after-video").pause();
    view.item = null;
  });
  const port = $("viewport");
  let drag = null;
  port.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY };
    port.setPointerCapture(e.pointerId);
    port.classList.add("panning");
  });
  port.addEventListener("pointermove", (e) => {
    if (!drag) return;
    pan(e.clientX - drag.x, e.clientY - drag.y);
    drag = { x: e.clientX, y: e.clientY };
  });
  const stop = () => {
    drag = null;
    port.classList.remove("panning");
  };
  port.addEventListener("pointerup", stop);
  port.addEventListener("pointercancel", stop);
  port.addEventListener("keydown", (e) => {
    const step = e.shiftKey ? 200 : 40;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (moves[e.key]) {
      e.preventDefault();
      pan(...moves[e.key]);
    } else if (e.key === "+" || e.key === "=") {
      zoomStep(1);
    } else if (e.key === "-") {
      zoomStep(-1);
    }
  });
  window.addEventListener("resize", () => {
    if (view.item) (view.fit ? zoomFit : layout)();
  });
}

// ---- wiring ----------------------------------------------------------------------------------------

function setUp() {
  loadOptions();
  optionsChanged();
  const options = $("options");
  options.addEventListener("input", optionsChanged);
  options.addEventListener("change", () => {
    optionsChanged();
    saveOptions();
    if (items.some((i) => i.state === "done" || i.state === "error")) {
      notice("Options changed: “Compress all again” applies them to the files in the list.");
    }
  });
  // Opened low on the screen (a phone, a long list), the options are scrolled up into view, as
  // far as keeping their summary line on the screen allows.
  $("options-fold").addEventListener("toggle", () => {
    const fold = $("options-fold");
    if (!fold.open) return;
    const box = options.getBoundingClientRect();
    const need = box.top + Math.min(box.height, window.innerHeight * 0.6) - window.innerHeight;
    if (need > 0) window.scrollBy(0, Math.min(need, fold.getBoundingClientRect().top));
  });
  options.addEventListener("submit", (e) => {
    e.preventDefault();
    saveOptions();
    const current = readOptions();
    let again = 0;
    for (const item of items) {
      if (!accepted(item.file) || ["uploading", "compressing", "transcoding", "queued"].includes(item.state)) continue;
      if (item.result) URL.revokeObjectURL(item.result.url);
      Object.assign(item, { state: "queued", result: null, message: "", options: current });
      render(item);
      again += 1;
    }
    totals();
    notice(again ? `Compressing ${again} file${again === 1 ? "" : "s"} again.` : "Nothing to compress again.");
    pump();
  });
  $("clear").addEventListener("click", () => {
    for (const item of items) {
      item.state = "removed";
      URL.revokeObjectURL(item.originalUrl);
      if (item.result) URL.revokeObjectURL(item.result.url);
      item.row.tr.remove();
    }
    items.length = 0;
    $("compare").hidden = true;
    totals();
    scoreColumn();
    notice("List cleared.");
  });
  $("choose").addEventListener("click", () => $("files").click());
  $("files").addEventListener("change", (e) => {
    addFiles(e.target.files);
    e.target.value = "";
  });
  $("download-all").addEventListener("click", downloadAll);

  let depth = 0;
  document.addEventListener("dragenter", (e) => {
    if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes("Files")) return;
    e.preventDefault();
    depth += 1;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging");
  });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    if (e.dataTransfer) addFiles(e.dataTransfer.files);
  });
  document.addEventListener("paste", (e) => {
    const files = e.clipboardData ? Array.from(e.clipboardData.files) : [];
    if (files.length) addFiles(files);
  });
  $("formats").textContent = readable;
  $("files").accept = [
    ...Object.keys(imageTypes),
    ...imageExtensions.map((e) => `.${e}`),
    ...videoTypes,
    ...videoExtensions.map((e) => `.${e}`),
  ].join(",");
  setUpCompare();
  totals();
}

setUp();
