// The card of card.json rendered to PNG by a peer, in-process, timings as JSON lines.
//   node peers.mjs <takumi|satori> <template.json> <data.json> <runs> <out.png> <fonts-dir> [src=path ...]
//   node peers.mjs noop <takumi|satori>     # loads the engine and exits: baseline RSS
//
// Prints one line per render ({"engine":…,"run":i,"ms":…}; run 0 is the cold render), then a
// summary. The tree is rebuilt from the template and data on every render, as a server would,
// with the same CSS pixeld-render's compiler writes for these layers (src/compile.rs).
// Fonts: Inter 400 and 700 (the bundled woff2 files, same bytes as ours). Images: the same
// bytes, by `src` for takumi (its `images` option) and as data: URIs for satori.
import fs from 'node:fs';
import path from 'node:path';

const [engine, ...rest] = process.argv.slice(2);

if (engine === 'noop') {
  await load(rest[0]);
  process.exit(0);
}

const [templatePath, dataPath, runsArg, outPath, fontsDir, ...srcArgs] = rest;
const template = JSON.parse(fs.readFileSync(templatePath, 'utf8'));
const data = JSON.parse(fs.readFileSync(dataPath, 'utf8'));
const runs = Number(runsArg);
const images = new Map(srcArgs.map((s) => {
  const i = s.indexOf('=');
  return [s.slice(0, i), fs.readFileSync(s.slice(i + 1))];
}));
const fonts = [400, 700].map((weight) => ({
  name: 'Inter',
  weight,
  style: 'normal',
  data: fs.readFileSync(path.join(fontsDir, `sans/inter-latin-${weight}-normal.woff2`)),
}));

// The number of the render under way: every value gets " #run" after it, as bench_card's
// run_data does for ours, so that no engine renders the same picture twice.
let run = 0;

function fill(s) {
  return s.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, k) => `${String(data[k] ?? '')} #${run}`);
}

function gradient(p) {
  if (typeof p === 'string') return { backgroundColor: p };
  const g = p.linear;
  const n = Math.max(g.stops.length, 2) - 1;
  const stops = g.stops.map((s, i) => `${s.color} ${(s.at ?? i / n) * 100}%`).join(', ');
  return { backgroundImage: `linear-gradient(${g.angle ?? 180}deg, ${stops})` };
}

const px = (v) => `${v}px`;

// The template as a neutral tree: {box, kind, ...}; each engine maps it to its own nodes.
function layout() {
  const page = template.page;
  const layers = template.layers.map((l) => {
    const box = { position: 'absolute', left: px(l.x ?? 0), top: px(l.y ?? 0) };
    if (l.width != null) box.width = px(l.width);
    if (l.height != null) box.height = px(l.height);
    if (l.type === 'text') {
      return {
        kind: 'text', box, text: fill(l.text),
        font: {
          fontFamily: 'Inter', fontSize: px(l.size ?? 32), lineHeight: l.line_height ?? 1.2,
          fontWeight: l.font?.weight ?? 400, color: l.color ?? '#000',
        },
      };
    }
    if (l.type === 'image') {
      const style = { ...box, objectFit: l.fit ?? 'cover' };
      if (l.radius != null) Object.assign(style, { borderRadius: px(l.radius), overflow: 'hidden' });
      return { kind: 'image', style, src: fill(l.src), width: l.width, height: l.height };
    }
    throw new Error(`layer type ${l.type} is not used by the card`);
  });
  const root = {
    display: 'flex', position: 'relative', overflow: 'hidden',
    width: px(page.width), height: px(page.height), ...gradient(page.background),
  };
  return { root, layers, width: page.width, height: page.height };
}

async function load(which) {
  if (which === 'takumi') return { Renderer: (await import('@takumi-rs/core')).Renderer };
  if (which === 'satori') {
    return { satori: (await import('satori')).default, Resvg: (await import('@resvg/resvg-js')).Resvg };
  }
  throw new Error(`unknown engine ${which}`);
}

async function setupTakumi() {
  const { Renderer } = await load('takumi');
  const renderer = new Renderer();
  for (const f of fonts) await renderer.registerFont(f);
  const sources = [...images].map(([src, bytes]) => ({ src, data: bytes }));
  return async () => {
    const t = layout();
    const children = t.layers.map((l) => (l.kind === 'text'
      ? {
        type: 'container',
        style: { ...l.box, display: 'flex', flexDirection: 'column', justifyContent: 'flex-start' },
        children: [{ type: 'text', text: l.text, style: { ...l.font, textAlign: 'start', width: '100%' } }],
      }
      : { type: 'image', src: l.src, style: l.style }));
    const node = { type: 'container', style: t.root, children };
    return renderer.render(node, { width: t.width, height: t.height, format: 'png', images: sources });
  };
}

async function setupSatori() {
  const { satori, Resvg } = await load('satori');
  const uris = new Map([...images].map(([src, bytes]) => [src, `data:image/png;base64,${bytes.toString('base64')}`]));
  const split = { satori: [], resvg: [] };
  const render = async () => {
    const t = layout();
    const children = t.layers.map((l) => (l.kind === 'text'
      ? { type: 'div', props: { style: { ...l.box, display: 'flex', ...l.font, textAlign: 'left' }, children: l.text } }
      : { type: 'img', props: { src: uris.get(l.src), width: l.width, height: l.height, style: l.style } }));
    const element = { type: 'div', props: { style: t.root, children } };
    const t0 = process.hrtime.bigint();
    const svg = await satori(element, { width: t.width, height: t.height, fonts });
    const t1 = process.hrtime.bigint();
    const png = new Resvg(svg, { fitTo: { mode: 'original' }, font: { loadSystemFonts: false } }).render().asPng();
    split.satori.push(Number(t1 - t0) / 1e6);
    split.resvg.push(Number(process.hrtime.bigint() - t1) / 1e6);
    return png;
  };
  render.split = split;
  return render;
}

function vmHwmKb() {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/);
  return m ? Number(m[1]) : 0;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const t0 = process.hrtime.bigint();
const render = engine === 'takumi' ? await setupTakumi() : await setupSatori();
const setupMs = Number(process.hrtime.bigint() - t0) / 1e6;
let out;
for (let i = 0; i <= runs; i++) {
  run = i;
  const t = process.hrtime.bigint();
  out = await render();
  console.log(JSON.stringify({ engine, run: i, ms: +(Number(process.hrtime.bigint() - t) / 1e6).toFixed(3) }));
}
fs.writeFileSync(outPath, out);
const summary = { engine, summary: true, setup_ms: +setupMs.toFixed(2), bytes: out.length, vm_hwm_kb: vmHwmKb() };
if (render.split && runs > 0) {
  // Warm medians of the two halves.
  summary.satori_ms = +median(render.split.satori.slice(1)).toFixed(3);
  summary.resvg_ms = +median(render.split.resvg.slice(1)).toFixed(3);
}
console.log(JSON.stringify(summary));
