/**
 * A function call the mock assistant makes.
 *
 * @example
 * ```ts
 * const call: MockToolCall = { name: 'get_weather', arguments: { city: 'Paris' } };
 * ```
 */
export interface MockToolCall {
  /** The call id; `call_mock_<request>_<index>` when omitted. */
  id?: string;
  /** The function's name. */
  name: string;
  /** The arguments: a JSON string as sent, or an object to serialise; `{}` when omitted. */
  arguments?: string | Readonly<Record<string, unknown>>;
}

/**
 * Token usage as the API reports it.
 *
 * @example
 * ```ts
 * const usage: Partial<MockUsage> = { prompt_tokens: 3_000, completion_tokens: 800 };
 * ```
 */
export interface MockUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

/**
 * What a successful completion says, when a plain string is not enough.
 *
 * @example
 * ```ts
 * const reply: MockReply = {
 *   toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }],
 *   usage: { prompt_tokens: 1_000 },
 * };
 * ```
 */
export interface MockReply {
  /**
   * The assistant's text. When omitted: `null` if there are tool calls,
   * else the default echo of the last user message.
   */
  content?: string | null;
  /** Function calls; they make `finish_reason` `'tool_calls'` by default. */
  toolCalls?: readonly MockToolCall[];
  /** `finish_reason`; `'tool_calls'` with tool calls, else `'stop'`, when omitted. */
  finishReason?: string;
  /** Overrides the estimated usage field by field; `total_tokens` follows the other two unless given. */
  usage?: Partial<MockUsage>;
}
