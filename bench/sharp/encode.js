// sharp (libvips) as a peer of `compressor bench`: ONE node process encodes the whole list, so
// node's start-up and module loading are not counted against sharp.
//
// Protocol: one JSON job per line on standard input,
//   {"input": PATH, "output": PATH, "format": "png-palette"|"jpeg"|"webp"|"avif", "quality": N, "orient": BOOL}
// and one JSON answer per line on standard output, in order,
//   {"bytes": N, "cpu_s": S, "wall_s": S} or {"error": TEXT}.
// The first line written is {"ready": true, "sharp": VERSION, "libvips": VERSION}.
//
// CPU per job is process.cpuUsage()'s delta (user + system of every thread of this process,
// like wait4 gives for our worker and the other peers). Jobs run one at a time and libvips gets
// one thread (sharp.concurrency(1)), as our worker and the CLI peers run single-threaded. The
// operation cache is off so a later job on the same input decodes it again, as a new process would.
'use strict';

const readline = require('node:readline');
const fs = require('node:fs');
const sharp = require('sharp');

sharp.concurrency(1);
sharp.cache(false);

// Encoder settings as people call sharp; `quality` is the swept knob. Anything else stays at
// sharp's defaults (metadata stripped, sRGB output).
function encoder(image, format, quality) {
  switch (format) {
    case 'png-palette':
      return image.png({ palette: true, quality });
    case 'jpeg':
      return image.jpeg({ mozjpeg: true, quality });
    case 'webp':
      return image.webp({ quality });
    case 'avif':
      return image.avif({ quality });
    default:
      throw new Error(`unknown format ${format}`);
  }
}

async function run(job) {
  const startCpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  // sharp does not apply the EXIF orientation unless asked (.rotate() with no angle).
  let image = sharp(job.input, { failOn: 'none' });
  if (job.orient) image = image.rotate();
  const info = await encoder(image, job.format, job.quality).toFile(job.output);
  const cpu = process.cpuUsage(startCpu);
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  return { bytes: info.size ?? fs.statSync(job.output).size, cpu_s: (cpu.user + cpu.system) / 1e6, wall_s: wall };
}

async function main() {
  process.stdout.write(JSON.stringify({ ready: true, sharp: sharp.versions.sharp, libvips: sharp.versions.vips }) + '\n');
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = await run(JSON.parse(line));
    } catch (e) {
      answer = { error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`encode.js: ${e.stack || e}\n`);
  process.exit(1);
});
