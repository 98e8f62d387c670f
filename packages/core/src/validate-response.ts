import type { ChatCompletion, ChatCompletionChunk } from './schemas.js';

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

export function isErrorBody(value: unknown): boolean {
  return isObject(value) && value.error !== undefined && value.error !== null && !Array.isArray(value.choices);
}

export function isCompletion(value: unknown): value is ChatCompletion {
  return isObject(value) && Array.isArray(value.choices);
}

export function isChunk(value: unknown): value is ChatCompletionChunk {
  return isObject(value) && Array.isArray(value.choices);
}
