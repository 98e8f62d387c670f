/**
 * The sluice demo: everything embedded (a mock upstream on 127.0.0.1,
 * in-memory state; the last section starts its own redis-server when one
 * is installed). Run it with `pnpm demo`.
 */
import { asyncClient } from './async-client.js';
import { caching } from './caching.js';
import { cost } from './cost.js';
import { fleet } from './fleet.js';
import { resilience } from './resilience.js';
import { routerDemo } from './router.js';

await asyncClient();
await resilience();
await routerDemo();
await cost();
await caching();
await fleet();
