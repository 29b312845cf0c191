import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { downloadFile } from '../src/download.js';

// A loopback HTTP server with Range support that can be told to cut a response short.
const body = Buffer.alloc(300_000);
for (let i = 0; i < body.length; i++) body[i] = (i * 7919 + (i >> 8)) & 0xff;
const sha = createHash('sha256').update(body).digest('hex');
let server: http.Server;
let base = '';
let cutNextAfter = 0;
const ranges: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'mucodec-dl-'));

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/redirect') { res.writeHead(302, { location: '/file.bin' }); res.end(); return; }
    if (req.url === '/corrupt.bin') {
      const bad = Buffer.from(body); bad[1234] ^= 0xff;
      res.writeHead(200, { 'content-length': bad.length }); res.end(bad); return;
    }
    if (req.url !== '/file.bin') { res.writeHead(404); res.end(); return; }
    const range = req.headers.range;
    ranges.push(range ?? '');
    let start = 0;
    if (range) {
      start = Number(/bytes=(\d+)-/.exec(range)![1]);
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const slice = body.subarray(start);
    if (cutNextAfter > 0) {
      const n = cutNextAfter; cutNextAfter = 0;
      res.write(slice.subarray(0, n), () => res.destroy());
    } else {
      res.end(slice);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => { server.close(); rmSync(dir, { recursive: true, force: true }); });

describe('resumable download (loopback server)', () => {
  it('resumes an interrupted transfer with a Range request and checks the SHA-256', async () => {
    const dest = join(dir, 'a.bin');
    ranges.length = 0;
    cutNextAfter = 100_000;
    await downloadFile(`${base}/file.bin`, dest, { sha256: sha, retries: 2 });
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(ranges[0]).toBe('');
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/bytes=(\d+)-/.exec(ranges[1]!)![1])).toBeGreaterThan(0);
    expect(existsSync(`${dest}.partial`)).toBe(false);
  });

  it('resumes from a partial file left by an earlier run, and follows redirects', async () => {
    const dest = join(dir, 'b.bin');
    writeFileSync(`${dest}.partial`, body.subarray(0, 123_456));
    ranges.length = 0;
    await downloadFile(`${base}/redirect`, dest, { sha256: sha });
    expect(ranges).toEqual(['bytes=123456-']);
    expect(readFileSync(dest).equals(body)).toBe(true);
  });

  it('rejects a corrupted copy, deletes the partial file and says so', async () => {
    const dest = join(dir, 'c.bin');
    await expect(downloadFile(`${base}/corrupt.bin`, dest, { sha256: sha })).rejects.toThrow(/SHA-256 mismatch.*partial file was deleted/);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.partial`)).toBe(false);
  });

  it('reports HTTP errors with the URL', async () => {
    await expect(downloadFile(`${base}/missing.bin`, join(dir, 'd.bin'))).rejects.toThrow(/missing.bin.*HTTP 404/);
  });
});

describe('fetch-weights (loopback server standing in for the Hugging Face repository)', () => {
  it('downloads the three checkpoints (resuming an interrupted one), checks SHA-256, and the result converts and loads', async () => {
    const { fetchWeights } = await import('../src/commands/fetch_weights.js');
    const { convert } = await import('../convert/convert.js');
    const { MuCodec } = await import('../src/codec.js');
    // the e2e fixture container holds the keys of all three real checkpoints at tiny size
    const src = join(import.meta.dirname, 'fixtures', 'convert', 'e2e.weights.pt');
    const bytes = readFileSync(src);
    const digest = createHash('sha256').update(bytes).digest('hex');
    let cut = true;
    const hits: string[] = [];
    const srv = http.createServer((req, res) => {
      hits.push(`${req.url} ${req.headers.range ?? ''}`.trim());
      const start = req.headers.range ? Number(/bytes=(\d+)-/.exec(req.headers.range)![1]) : 0;
      res.writeHead(start ? 206 : 200, { 'content-length': bytes.length - start });
      if (cut && req.url === '/repo/muq.pt') { cut = false; res.write(bytes.subarray(0, 5000), () => res.destroy()); return; }
      res.end(bytes.subarray(start));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/repo`;
      const wdir = join(dir, 'w');
      const ck = [
        { key: 'mucodec', file: 'mucodec.pt', sha256: digest },
        { key: 'muq', file: 'muq.pt', sha256: digest },
        { key: 'audioldm', file: 'audioldm_48k.pth', sha256: digest },
      ];
      const paths = await fetchWeights({ dir: wdir, baseUrl: url, checkpoints: ck });
      expect(hits).toContain('/repo/muq.pt bytes=5000-');
      for (const p of Object.values(paths)) expect(readFileSync(p).equals(bytes)).toBe(true);
      await convert({ mucodec: paths.mucodec!, muq: paths.muq!, audioldm: paths.audioldm!, outDir: wdir,
        config: join(import.meta.dirname, 'fixtures', 'convert', 'e2e.case-config.json') });
      const codec = await MuCodec.load({ weightsDir: wdir, parts: ['encoder'] });
      codec.dispose();
      // a wrong checksum is rejected and nothing is kept
      await expect(fetchWeights({ dir: join(dir, 'w2'), baseUrl: url, checkpoints: [{ key: 'muq', file: 'muq.pt', sha256: '0'.repeat(64) }] }))
        .rejects.toThrow(/SHA-256 mismatch/);
      expect(existsSync(join(dir, 'w2', 'checkpoints', 'muq.pt'))).toBe(false);
      expect(existsSync(join(dir, 'w2', 'checkpoints', 'muq.pt.partial'))).toBe(false);
    } finally {
      srv.close();
    }
  });
});
