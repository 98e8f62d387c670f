import { readFileSync } from 'node:fs';
import { ValidationError } from '@sluice/core';

/**
 * Reads and parses a JSON config file, not yet validated.
 *
 * @param path - the file named by `--config`
 * @throws ValidationError (`config`) when the file cannot be read or is not JSON
 */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ValidationError('config', `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError('config', `${path} is not JSON (${(error as Error).message})`);
  }
}
