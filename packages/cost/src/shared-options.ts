import { z } from 'zod';
import type { PriceTable } from './price-table.js';

/** The `prices` option every factory takes; internal. */
export const priceTableOption = z.custom<PriceTable>(
  (value) => typeof (value as PriceTable | undefined)?.lookup === 'function',
  'must be a price table (priceTable())',
);

/** The `unknownModel` option; internal. */
export const unknownModelOption = z.enum(['error', 'warn', 'free']);

/** The `expectedOutput` option: a token count or a ratio of the prompt; internal. */
export const expectedOutputOption = z.union([
  z.number().int().nonnegative(),
  z.strictObject({ ratio: z.number().nonnegative().finite() }),
]);
