import { x } from '@sluice/core'; export const y = x + 1;
