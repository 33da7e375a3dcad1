// Opens the demo page in headless Chromium and checks that the video really plays: its
// currentTime must advance. Each source the browser can decode (MP4, WebM, and HLS where the
// browser plays it natively) is also played on its own, so a broken fallback is caught even when
// the first source works.
//
// With CROSS_ORIGIN_URL (the same server under another origin, e.g. http://localhost:PORT when
// the page is on http://127.0.0.1:PORT) it also checks CORS as a player on another origin sees
// it: a `crossorigin` video plays, a Range fetch gets 206 with a readable Content-Range, and a
// fetch with If-None-Match (which needs a preflight) gets 304.
//
// Usage: node play-check.cjs BASE_URL   (PLAYWRIGHT_CORE, CHROMIUM, USER_DATA_DIR and
// CROSS_ORIGIN_URL from the environment; scripts/browser-check.sh sets them).
// Exit 0 when every required check passes.
'use strict';

const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const base = (process.argv[2] || '').replace(/\/+$/, '');
if (!base) {
  console.error('usage: play-check.cjs BASE_URL');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const userDataDir = process.env.USER_DATA_DIR;
const crossBase = (process.env.CROSS_ORIGIN_URL || '').replace(/\/+$/, '');
// How far playback must get, and how long it may take to get there.
const ADVANCE_SECONDS = 1.5;
const PLAY_TIMEOUT_MS = 20000;

const args = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

// Runs in the page: plays `video` muted and resolves with what happened.
async function playInPage({ selector, src, crossOrigin, advance, timeoutMs }) {
  let video = document.querySelector(selector);
  if (src) {
    video = document.createElement('video');
    if (crossOrigin) video.crossOrigin = 'anonymous';
    video.preload = 'auto';
    video.src = src;
    document.body.appendChild(video);
  }
  if (!video) return { ok: false, reason: `no element ${selector}` };
  video.muted = true;
  const start = Date.now();
  let playError = null;
  try {
    await video.play();
  } catch (e) {
    playError = String(e);
  }
  const startTime = video.currentTime;
  while (Date.now() - start < timeoutMs) {
    if (video.error) break;
    if (video.currentTime - startTime >= advance) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const result = {
    ok: !video.error && video.currentTime - startTime >= advance,
    currentSrc: video.currentSrc,
    currentTime: video.currentTime,
    duration: video.duration,
    size: `${video.videoWidth}x${video.videoHeight}`,
    readyState: video.readyState,
    error: video.error ? `code ${video.error.code}: ${video.error.message}` : null,
    playError,
  };
  video.pause();
  if (src) video.remove();
  return result;
}

// Runs in the page: cross-origin fetches that a CORS-aware player makes.
async function corsInPage({ url }) {
  const out = [];
  let r1;
  try {
    r1 = await fetch(url, { headers: { Range: 'bytes=0-99' }, cache: 'no-store' });
  } catch (e) {
    return [{ name: 'Range fetch', ok: false, detail: `blocked: ${e}` }];
  }
  const body = await r1.arrayBuffer();
  const etag = r1.headers.get('ETag');
  out.push({
    name: 'Range fetch',
    ok: r1.status === 206 && /^bytes 0-99\/\d+$/.test(r1.headers.get('Content-Range') || '') &&
      body.byteLength === 100 && !!etag,
    detail: `${r1.status}, Content-Range ${r1.headers.get('Content-Range')}, ETag ${etag}, ` +
      `${body.byteLength} bytes`,
  });
  // If-None-Match is not a CORS-safelisted header, so this one goes through a preflight.
  let detail;
  let ok = false;
  try {
    const r2 = await fetch(url, { headers: { 'If-None-Match': etag || '"none"' }, cache: 'no-store' });
    ok = r2.status === 304;
    detail = `${r2.status}`;
  } catch (e) {
    detail = `blocked: ${e}`;
  }
  out.push({ name: 'If-None-Match fetch (preflighted)', ok, detail });
  return out;
}

async function main() {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args,
    timeout: 30000,
  });
  const failures = [];
  const badResponses = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') console.log(`  console error: ${m.text()}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) badResponses.push(`${r.status()} ${r.url()}`);
    });
    page.on('requestfailed', (r) => {
      const why = r.failure() ? r.failure().errorText : 'failed';
      // A media element aborts its own range requests when it has what it needs.
      if (why !== 'net::ERR_ABORTED') badResponses.push(`${why} ${r.url()}`);
    });

    const url = `${base}/`;
    const resp = await page.goto(url, { waitUntil: 'load', timeout: 15000 });
    if (!resp || resp.status() !== 200) {
      throw new Error(`GET ${url} answered ${resp ? resp.status() : 'nothing'}`);
    }
    const version = context.browser() ? context.browser().version() : 'unknown';
    console.log(`browser-check: Chromium ${version}, page ${url}`);

    const support = await page.evaluate(() => {
      const v = document.createElement('video');
      return {
        mp4: v.canPlayType('video/mp4; codecs="avc1.4d401e, mp4a.40.2"'),
        webm: v.canPlayType('video/webm; codecs="vp9, opus"'),
        hls: v.canPlayType('application/vnd.apple.mpegurl'),
      };
    });
    console.log(
      `browser-check: canPlayType mp4/h264="${support.mp4}" webm/vp9="${support.webm}" hls="${support.hls}"`,
    );

    const opts = { advance: ADVANCE_SECONDS, timeoutMs: PLAY_TIMEOUT_MS };
    const checks = [{ name: 'page <video>', required: true, arg: { selector: '#player', ...opts } }];
    checks.push({
      name: 'media/demo.mp4',
      required: support.mp4 !== '',
      skip: support.mp4 === '' ? 'this Chromium has no H.264' : null,
      arg: { src: `${base}/media/demo.mp4`, ...opts },
    });
    checks.push({
      name: 'media/demo.webm',
      required: true,
      arg: { src: `${base}/media/demo.webm`, ...opts },
    });
    checks.push({
      name: 'hls/master.m3u8',
      required: false,
      skip: support.hls === '' ? 'no native HLS in this Chromium' : null,
      arg: { src: `${base}/hls/master.m3u8`, ...opts },
    });

    if (crossBase) {
      checks.push({
        name: `cross-origin <video crossorigin> ${crossBase}/media/demo.webm`,
        required: true,
        arg: { src: `${crossBase}/media/demo.webm`, crossOrigin: true, ...opts },
      });
    }

    for (const c of checks) {
      if (c.skip) {
        console.log(`  skip ${c.name}: ${c.skip}`);
        continue;
      }
      const r = await page.evaluate(playInPage, c.arg);
      const detail =
        `currentTime ${r.currentTime.toFixed(2)} s of ${Number(r.duration).toFixed(2)} s, ` +
        `${r.size}, src ${r.currentSrc.replace(base, '') || '-'}` +
        (r.error ? `, media error ${r.error}` : '') +
        (r.playError ? `, play() ${r.playError}` : '');
      if (r.ok) {
        console.log(`  ok   ${c.name}: ${detail}`);
      } else if (c.required) {
        console.log(`  FAIL ${c.name}: ${detail}`);
        failures.push(c.name);
      } else {
        console.log(`  warn ${c.name}: did not play (${detail})`);
      }
    }

    if (crossBase) {
      const results = await page.evaluate(corsInPage, { url: `${crossBase}/media/demo.mp4` });
      for (const r of results) {
        console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} CORS ${r.name}: ${r.detail}`);
        if (!r.ok) failures.push(`CORS ${r.name}`);
      }
    }
  } finally {
    await context.close();
  }
  for (const b of badResponses) console.log(`  bad response: ${b}`);
  if (badResponses.length) failures.push(`${badResponses.length} failed request(s)`);
  if (failures.length) {
    console.error(`browser-check: FAILED: ${failures.join('; ')}`);
    process.exit(1);
  }
  console.log('browser-check: video plays');
}

main().catch((e) => {
  console.error(`browser-check: FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
