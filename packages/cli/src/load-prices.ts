import { readFileSync } from 'node:fs';
import { ValidationError } from '@sluice/core';
import { type PriceEntryInput, type PriceTable, priceTable } from '@sluice/cost';

/**
 * Reads a price override file (a JSON object of `priceTable()` entries by
 * model) and lays it over the built-in table.
 *
 * @param source - a file path, or the entries themselves
 * @param field - the option's name, for errors
 * @throws ValidationError naming the bad entry or an unreadable file
 */
export function loadPrices(source: string | Record<string, unknown> | undefined, field = 'prices'): PriceTable {
  if (source === undefined) return priceTable();
  let entries: unknown = source;
  if (typeof source === 'string') {
    try {
      entries = JSON.parse(readFileSync(source, 'utf8'));
    } catch (error) {
      throw new ValidationError(field, `cannot read ${source} as JSON (${(error as Error).message})`);
    }
  }
  return priceTable(entries as Record<string, PriceEntryInput>);
}
