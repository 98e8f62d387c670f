/**
 * The free names the package READMEs' snippets use, declared once so each
 * snippet compiles as written. Nothing here runs.
 */
import type { ChatCompletionRequest, ChatMessage, ToolDefinition } from '@sluice/core';

export declare const baseUrl: string;
export declare const apiKey: string;
export declare const messages: ChatMessage[];
export declare const tools: ToolDefinition[];
export declare const log: { info(line: string): void; warn(line: string, ...rest: unknown[]): void; error(line: string): void };
export declare const requests: ChatCompletionRequest[];
export declare const metrics: { add(name: string, value: number, tags: Record<string, string>): void };
export declare const pager: { warn(line: string): void };
