// Runs one sharp job N times in-process, single-threaded, and prints the median as JSON.
// Usage: node sharp-job.js <input> <job> <runs> <output>   |   node sharp-job.js noop
'use strict';
const fs = require('fs');
const sharp = require('sharp');

sharp.concurrency(1);
sharp.cache(false); // every run starts cold, like a server handling distinct uploads

const jobs = {
  jpeg800: (s) => s.resize({ width: 800 }).jpeg({ quality: 80 }),
  jpeg200: (s) => s.resize({ width: 200 }).jpeg({ quality: 80 }),
  webp800: (s) => s.resize({ width: 800 }).webp({ quality: 80 }),
  webplossless: (s) => s.webp({ lossless: true }),
  avif2048: (s) => s.resize({ width: 2048 }).avif(),
};

async function main() {
  const [input, job, runs, output] = process.argv.slice(2);
  if (input === 'noop') return;
  const buf = fs.readFileSync(input);
  const times = [];
  let out;
  for (let i = 0; i < Number(runs); i++) {
    const t = process.hrtime.bigint();
    out = await jobs[job](sharp(buf)).toBuffer({ resolveWithObject: true });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  fs.writeFileSync(output, out.data);
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({
    median_ms: +times[Math.floor(times.length / 2)].toFixed(2),
    min_ms: +times[0].toFixed(2),
    bytes: out.data.length, width: out.info.width, height: out.info.height,
  }));
}
main().catch((e) => { console.error(e); process.exit(1); });
