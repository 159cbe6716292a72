/**
 * Fedora as data: releases, mirror layouts, package sets per variant, the
 * package manager of each release, and the pinned fingerprint of each
 * release's primary signing key. Mechanics (repomd, resolver, .rpm) live
 * in bootstrap/rpm/.
 *
 * Mirror layouts (checked against public mirror documentation):
 * - current releases: `releases/N/Everything/ARCH/os/`; updates
 *   `updates/N/Everything/ARCH/` since Fedora 28, `updates/N/ARCH/` before;
 * - end-of-life releases: the same paths under the archive root
 *   (`…/pub/archive/fedora/linux/`). In the 19 era `releases/N/` also holds
 *   `Fedora/ARCH/os/`, the install-DVD subset; nsbox always reads
 *   `Everything/`, the full set (yum's own fedora.repo does the same).
 * - metalinks: `repo=fedora-N` and `repo=updates-released-fN`.
 */
import { UsageError, VerifyError } from '../errors.js';
import { readTrustedKeys, type Certificate, type TrustedKeys } from '../bootstrap/pgp-lite.js';

/**
 * The newest stable release. Fedora 45 shipped in autumn 2026 (releases come
 * about every six months: 43 in October 2025, 44 in April 2026), and
 * Fedora's rawhide key file points at 46's key, which makes 46 rawhide.
 */
export const FEDORA_CURRENT = 45;
/** The release number rawhide carries now (RPM-GPG-KEY-fedora-rawhide-primary → 46). */
export const FEDORA_RAWHIDE = 46;
/** The oldest release nsbox bootstraps. */
export const FEDORA_OLDEST = 19;
/**
 * Releases below this number are end-of-life and served from the archive.
 * A release reaches end of life four weeks after the release two numbers
 * later ships, so 43 ended shortly after 45 (late 2026).
 */
export const FEDORA_FIRST_MAINTAINED = 44;

export const MIRROR_DEFAULT = 'https://dl.fedoraproject.org/pub/fedora/linux/';
export const ARCHIVE_DEFAULT = 'https://archives.fedoraproject.org/pub/archive/fedora/linux/';
export const METALINK_TEMPLATE = 'https://mirrors.fedoraproject.org/metalink?repo=$repo&arch=$basearch';

/**
 * Fingerprints of each release's primary key (from Fedora's
 * RPM-GPG-KEY-fedora-N-primary files; 46 and 47 were published ahead).
 * A key is used only when its fingerprint is one of these.
 */
export const FEDORA_KEY_FINGERPRINTS: Readonly<Record<number, string>> = Object.freeze({
  19: 'CA81B2C85E4F4D4A1A3F723407477E65FB4B18E6',
  20: 'C7C9A9C89153F20183CE7CBA2EB161FA246110C1',
  21: '6596B8FBABDA5227A9C5B59E89AD4E8795A43F54',
  22: 'C527EA07A9349B589C35E1BF11ADC0948E1431D5',
  23: 'EF45510680FB02326B045AFB32474CF834EC9CBA',
  24: '5048BDBBA5E776E547B09CCC73BDE98381B46521',
  25: 'C437DCCD558A66A37D6F43724089D8F2FDB19C98',
  26: 'E641850B77DF435378D1D7E2812A6B4B64DAB85D',
  27: '860E19B0AFA800A1751881A6F55E7430F5282EE4',
  28: '128CF232A9371991C8A65695E08E7E629DB62FB1',
  29: '5A03B4DD8254ECA02FDA1637A20AA56B429476B4',
  30: 'F1D8EC98F241AAF20DF69420EF3C111FCFC659B9',
  31: '7D22D5867F2A4236474BF7B850CB390B3C3359C4',
  32: '97A1AE57C3A2372CCA3A4ABA6C13026D12C944D0',
  33: '963A2BEB02009608FE67EA4249FD77499570FF31',
  34: '8C5BA6990BDB26E19F2A1A801161AE6945719A39',
  35: '787EA6AE1147EEE56C40B30CDB4639719867C58F',
  36: '53DED2CB922D8B8D9E63FD18999F7CBF38AB71F4',
  37: 'ACB5EE4E831C74BB7C168D27F55AD3FB5323552A',
  38: '6A51BBABBA3D5467B6171221809A8D7CEB10B464',
  39: 'E8F23996F23218640CB44CBE75CF5AC418B8E74C',
  40: '115DF9AEF857853EE8445D0A0727707EA15B79CC',
  41: '466CF2D8B60BC3057AA9453ED0622462E99D6AD1',
  42: 'B0F4950458F69E1150C6C5EDC8AC4916105EF944',
  43: 'C6E7F081CF80E13146676E88829B606631645531',
  44: '36F612DCF27F7D1A48A835E4DBFCF71C6D9F90A6',
  45: '4F50A6114CD5C6976A7F1179655A4B02F577861E',
  46: 'D924B10D3E810DABDD8B56B596E7E91491211FCE',
  47: 'B2E766FA50CA6FA2D5ED06FC09D879E09488FB64',
});

export type FedoraVariant = 'minimal' | 'boot';
export const FEDORA_VARIANTS: readonly FedoraVariant[] = ['minimal', 'boot'];

/** One repository of a release, as frozen data. */
export interface FedoraRepo {
  /** `fedora` or `updates` (the ids yum/dnf use). */
  id: 'fedora' | 'updates';
  /** Base URL of the repository (ends in `/`), when a mirror is known. */
  baseUrl?: string;
  /** Metalink URL, when no mirror was given. */
  metalink?: string;
}

/** A resolved Fedora release. */
export interface FedoraRelease {
  /** The number (rawhide: its current number). */
  number: number;
  /** `rawhide` or the number as text: the `releasever` written into the tree. */
  releasever: string;
  rawhide: boolean;
  endOfLife: boolean;
  /** `yum` (19–21), `dnf` (22–40), `dnf5` (41+). */
  packageManager: 'yum' | 'dnf' | 'dnf5';
  /** Upper-case hex fingerprint of the key that signs its packages. */
  fingerprint: string;
}

/**
 * Parses `--release`: a number from 19 to rawhide's, or `rawhide`.
 *
 * @example
 * fedoraRelease('19'); // { number: 19, packageManager: 'yum', endOfLife: true, … }
 * fedoraRelease('rawhide').number; // 46
 */
export function fedoraRelease(spec: string | number = FEDORA_CURRENT): FedoraRelease {
  const s = String(spec).toLowerCase();
  const rawhide = s === 'rawhide';
  const n = rawhide ? FEDORA_RAWHIDE : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!(n >= FEDORA_OLDEST && n <= FEDORA_RAWHIDE)) {
    throw new UsageError(`cannot bootstrap Fedora release \`${spec}\``, { hint: `releases ${FEDORA_OLDEST} to ${FEDORA_CURRENT}, or rawhide` });
  }
  return {
    number: n,
    releasever: rawhide || n === FEDORA_RAWHIDE ? 'rawhide' : String(n),
    rawhide: rawhide || n === FEDORA_RAWHIDE,
    endOfLife: n < FEDORA_FIRST_MAINTAINED,
    packageManager: n <= 21 ? 'yum' : n <= 40 ? 'dnf' : 'dnf5',
    fingerprint: FEDORA_KEY_FINGERPRINTS[n]!,
  };
}

/**
 * The repositories of a release: from `mirror` (a Fedora mirror root such
 * as `https://example.org/fedora/linux/`) in Fedora's layout, else from the
 * archive for end-of-life releases, else through metalinks. Rawhide has no
 * updates repository and lives under `development/rawhide/`.
 *
 * @example
 * fedoraRepos(fedoraRelease('40'), 'x86_64', { mirror: 'http://127.0.0.1:8080/' });
 * // [{ id: 'fedora', baseUrl: 'http://127.0.0.1:8080/releases/40/Everything/x86_64/os/' },
 * //  { id: 'updates', baseUrl: 'http://127.0.0.1:8080/updates/40/Everything/x86_64/' }]
 */
export function fedoraRepos(rel: FedoraRelease, arch: string, opts: { mirror?: string; metalink?: string } = {}): FedoraRepo[] {
  // an explicit metalink wins over the archive default of end-of-life releases
  const root = opts.mirror ?? (rel.endOfLife && !opts.metalink ? ARCHIVE_DEFAULT : undefined);
  if (root) {
    const base = root.endsWith('/') ? root : `${root}/`;
    if (rel.releasever === 'rawhide') return [{ id: 'fedora', baseUrl: `${base}development/rawhide/Everything/${arch}/os/` }];
    const updates = rel.number >= 28 ? `updates/${rel.number}/Everything/${arch}/` : `updates/${rel.number}/${arch}/`;
    return [
      { id: 'fedora', baseUrl: `${base}releases/${rel.number}/Everything/${arch}/os/` },
      { id: 'updates', baseUrl: base + updates },
    ];
  }
  const link = (repo: string) => (opts.metalink ?? METALINK_TEMPLATE).replace('$repo', repo).replace('$basearch', arch).replace('$releasever', rel.releasever);
  if (rel.releasever === 'rawhide') return [{ id: 'fedora', metalink: link('rawhide') }];
  return [
    { id: 'fedora', metalink: link(`fedora-${rel.number}`) },
    { id: 'updates', metalink: link(`updates-released-f${rel.number}`) },
  ];
}

/**
 * The packages a variant installs before --include/--exclude.
 * `minimal`: a shell, coreutils, rpm, the release's package manager and
 * fedora-release; `boot`: minimal plus systemd as init and what a console
 * login needs (util-linux's login and agetty, passwd, shadow-utils).
 *
 * @example
 * variantPackages(fedoraRelease(19), 'minimal'); // ['bash', 'coreutils', 'rpm', 'yum', 'fedora-release']
 */
export function variantPackages(rel: FedoraRelease, variant: FedoraVariant): string[] {
  const minimal = ['bash', 'coreutils', 'rpm', rel.packageManager, 'fedora-release'];
  switch (variant) {
    case 'minimal': return minimal;
    case 'boot': return [...minimal, 'systemd', 'util-linux', 'passwd', 'shadow-utils', 'setup'];
    default: throw new UsageError(`cannot use variant \`${variant as string}\` for Fedora`, { hint: `variants: ${FEDORA_VARIANTS.join(', ')}` });
  }
}

/** Where a release's key may be found, in the order tried. */
export interface KeySource {
  kind: 'keyring' | 'host' | 'https';
  location: string;
}

/**
 * Key discovery, in order: `--keyring FILE`, the host's
 * /etc/pki/rpm-gpg (fedora-gpg-keys), /usr/share/distribution-gpg-keys
 * (Debian's distribution-gpg-keys package), then Fedora over HTTPS.
 *
 * @example
 * keySources(fedoraRelease('40'))[1]; // { kind: 'host', location: '/etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-40-primary' }
 */
export function keySources(rel: FedoraRelease, opts: { keyring?: string } = {}): KeySource[] {
  const file = `RPM-GPG-KEY-fedora-${rel.number}-primary`;
  const out: KeySource[] = [];
  if (opts.keyring) out.push({ kind: 'keyring', location: opts.keyring });
  out.push(
    { kind: 'host', location: `/etc/pki/rpm-gpg/${file}` },
    { kind: 'host', location: `/usr/share/distribution-gpg-keys/fedora/${file}` },
    { kind: 'https', location: `https://src.fedoraproject.org/rpms/fedora-repos/raw/rawhide/f/${file}` },
  );
  return out;
}

/**
 * Loads the release's key from the first source that has one whose
 * fingerprint matches the pin; keys that do not match are ignored (and
 * named in the error if nothing matches).
 *
 * @example
 * const { key, source } = await loadFedoraKey(fedoraRelease('40'), { keyring: '/tmp/fedora.asc' });
 */
export async function loadFedoraKey(
  rel: FedoraRelease,
  opts: { keyring?: string; fetchText?: (url: string) => Promise<string> } = {},
): Promise<{ key: Certificate; keys: TrustedKeys; source: KeySource }> {
  const { readFile } = await import('node:fs/promises');
  const seen: string[] = [];
  for (const source of keySources(rel, opts)) {
    let data: string | Uint8Array;
    try {
      if (source.kind === 'https') {
        const fetchText = opts.fetchText ?? (async (u: string) => { const r = await fetch(u); if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.text(); });
        data = await fetchText(source.location);
      } else {
        data = await readFile(source.location);
      }
    } catch {
      continue;
    }
    let ring: TrustedKeys;
    try {
      ring = readTrustedKeys([typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)]);
    } catch {
      seen.push(`${source.location} (unreadable)`);
      continue;
    }
    for (const key of ring.certificates) {
      if (key.fingerprint === rel.fingerprint) {
        // only the pinned certificate is trusted, whatever else the file holds
        const keys = ring.certificates.length === 1 ? ring : { certificates: [key], raw: ring.raw };
        return { key, keys, source };
      }
      seen.push(`${source.location} (${key.fingerprint || 'not a version 4 key'})`);
    }
  }
  throw new VerifyError(`cannot find the Fedora ${rel.number} key with fingerprint ${rel.fingerprint}`, {
    hint: seen.length ? `keys found did not match: ${seen.join(', ')}` : 'install fedora-gpg-keys / distribution-gpg-keys, or pass --keyring FILE',
  });
}
