import { SluiceError } from '@sluice/core';

/**
 * What must be sent does not fit the token budget even with every
 * droppable turn dropped: the system/developer messages, the last user
 * turn (with any summary) and the tool definitions alone are over it.
 * Nothing was sent. Code `PROMPT_TOO_LONG`, not retryable: the same
 * request is too long again. (Core's `ContextLengthError` is the
 * upstream's own refusal of a long prompt, after sending.)
 *
 * @example
 * ```ts
 * try { await llm.complete(request); }
 * catch (error) {
 *   if (error instanceof PromptTooLongError) reply(`Please shorten your message by about ${error.overBy} tokens.`);
 * }
 * ```
 */
export class PromptTooLongError extends SluiceError {
  static override readonly brand: string = 'PromptTooLongError';
  /** How many tokens are over: `needed − budget`. */
  readonly overBy: number;

  /**
   * @param model - the request's model
   * @param needed - tokens of what cannot be dropped
   * @param budget - tokens allowed for the prompt
   */
  constructor(
    readonly model: string,
    readonly needed: number,
    readonly budget: number,
  ) {
    super(
      'PROMPT_TOO_LONG',
      `the prompt for ${model} needs ${needed} tokens without any droppable turn, over its budget of ${budget} by ${needed - budget}`,
      { retryable: false },
    );
    this.overBy = needed - budget;
  }
}
