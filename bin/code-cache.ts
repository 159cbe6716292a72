/**
 * A V8 code cache holds only the functions of the run that wrote it
 * (dist/cli/nsbox.cjs, made by bin/bundle.mjs): the loader writes one at exit
 * only for a run that marked itself here, one that did its command's whole
 * job (a container ran, a tree was built, an image written). A first run
 * refused at a flag, or `--help`, would leave a cache that makes every later
 * run compile its path again.
 */
export function markCacheWorthy(): void {
  (globalThis as Record<symbol, unknown>)[Symbol.for('nsbox.code-cache')] = true;
}
