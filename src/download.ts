/**
 * Resumable HTTP(S) download with SHA-256 check, for `mucodec fetch-weights`.
 *
 * Data goes to `<dest>.partial`; an interrupted transfer is resumed with an HTTP Range request (a server that
 * answers 200 instead of 206 restarts it from zero). When complete the whole file is hashed; on a match it is
 * renamed to `dest`, on a mismatch the partial file is deleted and the error says so. Redirects are followed
 * (Hugging Face serves files from a CDN behind a 302).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';

export interface DownloadOptions {
  sha256?: string;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** attempts after a dropped connection (each resumes where the last stopped) */
  retries?: number;
  maxRedirects?: number;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path).on('data', (c) => h.update(c)).on('end', () => resolve()).on('error', reject);
  });
  return h.digest('hex');
}

interface Attempt { status: number; total: number; complete: boolean }

function requestOnce(url: string, dest: string, offset: number, opts: DownloadOptions, redirects: number): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
    if (!mod) { reject(new Error(`unsupported URL scheme in ${url}`)); return; }
    const headers: Record<string, string> = { 'user-agent': 'mucodec-ts' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const req = mod.get(u, { headers, signal: opts.signal }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= (opts.maxRedirects ?? 5)) { reject(new Error(`${url}: too many redirects`)); return; }
        requestOnce(new URL(res.headers.location, u).toString(), dest, offset, opts, redirects + 1).then(resolve, reject);
        return;
      }
      if (status === 416 && offset > 0) { res.resume(); resolve({ status, total: offset, complete: true }); return; }
      if (status !== 200 && status !== 206) { res.resume(); reject(new Error(`${url}: HTTP ${status}`)); return; }
      const append = status === 206 && offset > 0;
      const start = append ? offset : 0;
      const len = Number(res.headers['content-length'] ?? NaN);
      const total = Number.isFinite(len) ? start + len : NaN;
      const out = createWriteStream(dest, { flags: append ? 'a' : 'w' });
      let got = start;
      let finished = false;
      // The file is always ended cleanly (flushing what arrived) whether the response ends or breaks off,
      // so a later attempt can resume from the bytes already on disk.
      const finish = (err?: Error): void => {
        if (finished) return;
        finished = true;
        out.end(() => {
          if (err) reject(new Error(`connection broke after ${got} bytes (${err.message})`));
          else if (Number.isFinite(total) && got < total) reject(new Error(`connection closed after ${got} of ${total} bytes`));
          else resolve({ status, total: got, complete: true });
        });
      };
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        opts.onProgress?.(got, total);
        if (!out.write(chunk)) { res.pause(); out.once('drain', () => res.resume()); }
      });
      res.on('end', () => finish());
      res.on('error', (e) => finish(e));
      res.on('close', () => finish(got < total ? new Error('connection closed early') : undefined));
      out.on('error', (e) => { finished = true; reject(e); });
    });
    req.on('error', reject);
  });
}

export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<void> {
  if (existsSync(dest) && opts.sha256 && (await sha256File(dest)) === opts.sha256) return;
  const partial = `${dest}.partial`;
  const retries = opts.retries ?? 3;
  let lastErr: unknown = null;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (opts.signal?.aborted) throw new Error('download aborted');
    const offset = existsSync(partial) ? statSync(partial).size : 0;
    try {
      await requestOnce(url, partial, offset, opts, 0);
      lastErr = null;
      break;
    } catch (e) {
      lastErr = e;
      if (opts.signal?.aborted || /HTTP 4\d\d|unsupported URL|too many redirects/.test((e as Error).message)) break;
    }
  }
  if (lastErr) throw new Error(`download of ${url} failed: ${(lastErr as Error).message} (partial data kept in ${partial}; run again to resume)`);
  if (opts.sha256) {
    const got = await sha256File(partial);
    if (got !== opts.sha256) {
      await unlink(partial).catch(() => undefined);
      throw new Error(`${url}: SHA-256 mismatch (got ${got}, expected ${opts.sha256}); the partial file was deleted`);
    }
  }
  await rename(partial, dest);
}
