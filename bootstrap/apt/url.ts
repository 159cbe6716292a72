/**
 * URLs inside an archive. Built with URL, not by pasting strings: a mirror
 * given as `http://127.0.0.1:3142` (a local proxy, no path) or with a
 * trailing slash must give the same URLs as `http://host/debian`.
 */

/**
 * `path` (relative, e.g. `dists/trixie/InRelease` or a pool file name)
 * under the archive at `base`.
 *
 * @example
 * archiveUrl('http://127.0.0.1:3142', 'dists/trixie/InRelease') // 'http://127.0.0.1:3142/dists/trixie/InRelease'
 * archiveUrl('http://mirror.example/debian/', 'pool/main/h/hello/hello_2.10-3_amd64.deb')
 */
export function archiveUrl(base: string, path: string): string {
  const u = new URL(base);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  // "./" keeps a first segment with a colon from reading as a scheme.
  return new URL(`./${path.replace(/^\/+/, '')}`, u).href;
}

/** Whether `text` is an absolute http(s):// or file:// URL that URL accepts. */
export function isArchiveUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'file:') && (u.protocol === 'file:' || !!u.host);
  } catch {
    return false;
  }
}
