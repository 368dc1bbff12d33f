/**
 * The dashboard's files, served as they are written: `dashboard/` at the
 * package's root holds the page (index.html), its stylesheet and its script
 * modules (checked by `npm run typecheck` through tsconfig.dashboard.json).
 * The page holds no data: it talks to the API like any other client, with
 * the token.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Router } from 'express';

/**
 * The page's policy: its own script and stylesheet only, nothing inline (no
 * inline script, style element or attribute, no event-handler attribute).
 * `blob:` images: the library's pictures are fetched with the token and shown
 * through object URLs. `connect-src 'self'` covers the API calls, the event
 * streams and the /ws feed on the same host.
 */
export const dashboardPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** `dashboard/` in the first folder up from here that has one: the checkout when run from src/, the package (or the image's /app) when run from dist/. */
export function dashboardDirectory(from: string = __dirname): string {
  for (let dir = from; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'dashboard');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
  }
  throw new Error(`the dashboard's files (dashboard/index.html) are in no folder above ${from}`);
}

/**
 * GET / (the page) and GET /dashboard/* (its stylesheet and modules, as
 * index.html names them). They are not fingerprinted, so a browser
 * revalidates them on every load (`no-cache` with the ETag and Last-Modified
 * that express.static sends), and a new version shows at once. Only requests
 * under /dashboard look at the disk: API calls never do.
 */
export function createDashboardRouter(directory: string = dashboardDirectory()): Router {
  const router = express.Router();
  const files = express.static(directory, {
    index: 'index.html',
    redirect: false,
    dotfiles: 'ignore',
    cacheControl: false,
    setHeaders: (res, file) => {
      res.setHeader('Cache-Control', 'no-cache');
      if (file.endsWith('.html')) res.setHeader('Content-Security-Policy', dashboardPolicy);
    },
  });
  router.get('/', files);
  router.use('/dashboard', files);
  return router;
}
