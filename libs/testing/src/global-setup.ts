// Vitest globalSetup (vitest.config.mts): before any test runs, makes sure the Redis the
// tests use answers (starting a local one through tools/scripts/ensure-redis.sh when
// none does), or stops the run at once with one line saying where and what to do.
import { TestRedisUnavailableError, ensureTestRedis, testRedisUrl } from './test-redis';

export default async function setup(): Promise<void> {
  const url = testRedisUrl();
  try {
    await ensureTestRedis(url);
  } catch (error) {
    if (!(error instanceof TestRedisUnavailableError)) throw error;
    // Vitest prints a thrown error with its stack; this is a set-up problem, not a bug.
    error.stack = `${error.name}: ${error.message}`;
    throw error;
  }
  // Test workers start after this and resolve the same URL (libs/testing TEST_REDIS_URL).
  process.env.XYP_TEST_REDIS_URL = url;
}
