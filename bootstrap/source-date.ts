/**
 * SOURCE_DATE_EPOCH (reproducible-builds.org): when set, what nsbox writes
 * carries that time instead of the clock's — archive members' mtimes are
 * clamped to it, OCI configs and nsbox's own record in the tree say it, and
 * the tree's package scripts get it in their environment (shadow's
 * last-change dates, for one, come from it).
 */
import { UsageError } from '../errors.js';

/**
 * The epoch seconds SOURCE_DATE_EPOCH holds, or undefined when unset or empty.
 *
 * @example
 * sourceDateEpoch({ SOURCE_DATE_EPOCH: '1700000000' }) // 1700000000
 */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,12}$/.test(v.trim())) {
    throw new UsageError(`invalid SOURCE_DATE_EPOCH \`${v}\``, { hint: 'give whole seconds since 1970, e.g. SOURCE_DATE_EPOCH=$(date +%s)' });
  }
  return Number(v.trim());
}

/** The time to record: SOURCE_DATE_EPOCH's when set, else now. */
export function recordedNow(env: NodeJS.ProcessEnv = process.env): Date {
  const sde = sourceDateEpoch(env);
  return sde === undefined ? new Date() : new Date(sde * 1000);
}
