import { expect, test } from 'vitest';
import { y } from './index.js';
test('resolves', () => { expect(y).toBe(2); });
