import { SluiceError } from '@sluice/core';

/**
 * No deployment could take the call: the model has none, or every one
 * is cooling down, full or too small for the prompt. Retryable (with
 * `retryAfterMs`) when waiting may help; final when no deployment serves
 * the model or fits the prompt.
 */
export class NoDeploymentError extends SluiceError {
  static override readonly brand = 'NoDeploymentError';
  /**
   * @param model - the model the caller asked for
   * @param message - why none could take it
   * @param retryAfterMs - when one may be free again, if any may
   */
  constructor(
    readonly model: string,
    message: string,
    retryAfterMs: number | undefined,
  ) {
    super('NO_DEPLOYMENT', message, { retryable: retryAfterMs !== undefined, final: retryAfterMs === undefined, retryAfterMs });
  }
}

/**
 * A deployment answered with a content-filter refusal and the caller
 * configured somewhere else for it: kept on the hop, and thrown only if
 * no deployment down the chain answered.
 */
export class ContentFilteredError extends SluiceError {
  static override readonly brand = 'ContentFilteredError';
  /** @param deployment - the deployment that refused */
  constructor(readonly deployment: string) {
    super('CONTENT_FILTERED', `deployment ${deployment} refused the request (content filter)`);
  }
}
