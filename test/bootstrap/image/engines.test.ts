import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { resolveInTree } from '../../../runtime/tree.js';
import { nsbox } from '../../helpers/cli.js';
import { Containers } from '../../helpers/containers.js';
import { minbaseTree } from '../../helpers/debian-trees.js';
import { treeManifest } from '../../helpers/tree-manifest.js';
import { tempDir } from '../helpers.js';

const MACHINES = '/var/lib/machines';

describe('exported images in podman, skopeo and a registry', function () {
  this.timeout(20 * 60_000);
  let tree: string;
  let tmp: ReturnType<typeof tempDir>;
  let engines: Containers;
  let archive: string;
  let manifestDigest: string;
  const name = `nsbox-test-${process.pid}-registry`;
  before(async () => {
    tree = await minbaseTree('bookworm');
    tmp = tempDir();
    engines = new Containers();
    archive = join(tmp.dir, 'bookworm.oci.tar');
    const r = nsbox(['export', '--json', tree, `oci-archive:${archive}:bookworm`]);
    assert.equal(r.status, 0, r.stderr);
    manifestDigest = (JSON.parse(r.stdout) as { manifestDigest: string }).manifestDigest;
  });
  after(async () => {
    await engines?.cleanup();
    tmp?.cleanup();
    if (tree) rmSync(tree, { recursive: true, force: true });
    rmSync(join(MACHINES, name), { recursive: true, force: true });
  });

  it('podman run --rm oci-archive:FILE /bin/sh -c \'cat /etc/os-release\' prints the tree\'s os-release', () => {
    const r = engines.podman(['run', '--rm', `oci-archive:${archive}`, '/bin/sh', '-c', 'cat /etc/os-release']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(resolveInTree(tree, '/etc/os-release'), 'utf8'));
  });

  it('skopeo copies the export to a docker-registry on 127.0.0.1 and back, digests unchanged, and importing that gives the same tree', async () => {
    const registry = await engines.registry();
    const ref = `docker://${registry}/nsbox/minbase:bookworm`;
    let r = engines.skopeo(['copy', '--dest-tls-verify=false', `oci-archive:${archive}:bookworm`, ref]);
    assert.equal(r.status, 0, r.stderr);
    r = engines.skopeo(['inspect', '--tls-verify=false', ref]);
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { Digest: string; Architecture: string; Os: string; Layers: string[] };
    assert.equal(info.Digest, manifestDigest, 'the registry holds another manifest than the export wrote');
    assert.equal(info.Os, 'linux');
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Layers.length, 1);
    const back = join(tmp.dir, 'back');
    r = engines.skopeo(['copy', '--src-tls-verify=false', ref, `oci:${back}:bookworm`]);
    assert.equal(r.status, 0, r.stderr);
    const backIndex = JSON.parse(readFileSync(join(back, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(backIndex.manifests[0].digest, info.Digest, 'the manifest came back changed');
    const imported = nsbox(['import', `oci:${back}:bookworm`, name]);
    assert.equal(imported.status, 0, imported.stderr);
    assert.ok(existsSync(join(MACHINES, name, 'etc/os-release')));
    const strip = (m: string[]) => m.filter((l) => !l.startsWith('. '));
    assert.deepEqual(strip(await treeManifest(join(MACHINES, name), { mtimes: true })), strip(await treeManifest(tree, { mtimes: true, devices: false, sockets: false })));
  });
});
