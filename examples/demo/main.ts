/**
 * The sluice demo: everything embedded (a mock upstream on 127.0.0.1,
 * in-memory state). Run it with `pnpm demo`.
 */
import { asyncClient } from './async-client.js';
import { caching } from './caching.js';
import { cost } from './cost.js';
import { resilience } from './resilience.js';

await asyncClient();
await resilience();
await cost();
await caching();
