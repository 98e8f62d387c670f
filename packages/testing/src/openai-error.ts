import { STATUS_CODES } from 'node:http';

/**
 * The JSON body OpenAI-compatible APIs answer errors with.
 *
 * @example
 * ```ts
 * const body: OpenAIErrorBody = openAIError(429, 'Slow down');
 * body.error.code; // 'rate_limit_exceeded'
 * ```
 */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

interface ErrorDefaults {
  message: string;
  type: string;
  code: string | null;
  param?: string;
}

// Messages and codes as the OpenAI API sends them, so clients that match on
// them (context-length detection, quota vs. rate limit) are exercised for real.
const byStatus: Record<number, ErrorDefaults> = {
  400: { message: 'Invalid request.', type: 'invalid_request_error', code: null },
  401: {
    message: 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
    type: 'invalid_request_error',
    code: 'invalid_api_key',
  },
  403: { message: 'You are not allowed to access this resource.', type: 'permission_error', code: 'forbidden' },
  404: {
    message: 'The model does not exist or you do not have access to it.',
    type: 'invalid_request_error',
    code: 'model_not_found',
  },
  408: { message: 'Request timed out.', type: 'timeout', code: 'timeout' },
  409: { message: 'The request conflicts with another request.', type: 'conflict', code: 'conflict' },
  413: { message: 'Request entity too large.', type: 'invalid_request_error', code: 'request_too_large' },
  422: { message: 'Unprocessable entity.', type: 'invalid_request_error', code: null },
  429: {
    message: 'Rate limit reached for requests. Please try again later.',
    type: 'requests',
    code: 'rate_limit_exceeded',
  },
  500: {
    message: 'The server had an error while processing your request. Sorry about that!',
    type: 'server_error',
    code: null,
  },
  502: { message: 'Bad gateway.', type: 'server_error', code: null },
  503: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error', code: null },
  504: { message: 'Gateway timeout.', type: 'server_error', code: null },
};

const byCode: Record<string, Omit<ErrorDefaults, 'code'>> = {
  context_length_exceeded: {
    message:
      "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
    type: 'invalid_request_error',
    param: 'messages',
  },
  insufficient_quota: {
    message: 'You exceeded your current quota, please check your plan and billing details.',
    type: 'insufficient_quota',
  },
};

/**
 * Builds an OpenAI-shaped error body, with the message, `type` and `code`
 * the real API uses for that status (or for that `code`, such as
 * `context_length_exceeded`) unless given.
 *
 * @param status - the HTTP status the error goes with (400, 429, 503, …)
 * @param message - the human-readable message; a realistic default when omitted
 * @param code - the machine-readable `code`; the status's usual code when omitted, `null` to send none
 * @returns `{ error: { message, type, param, code } }`
 * @example
 * ```ts
 * upstream.enqueue({ kind: 'status', status: 400, body: openAIError(400, 'Too long', 'context_length_exceeded') });
 * ```
 */
export function openAIError(status: number, message?: string, code?: string | null): OpenAIErrorBody {
  return errorBody({ status, message, code });
}

/**
 * The fields a fault may override in an error body; internal.
 *
 * @example
 * ```ts
 * const fields: ErrorFields = { status: 400, code: 'context_length_exceeded' };
 * ```
 */
export interface ErrorFields {
  status: number;
  message?: string | undefined;
  type?: string | undefined;
  code?: string | null | undefined;
  param?: string | null | undefined;
}

/**
 * {@link openAIError} with every field overridable; internal.
 *
 * @param fields - the status and any field to set
 * @example
 * ```ts
 * errorBody({ status: 503, message: 'Overloaded', code: 'server_overloaded' });
 * ```
 */
export function errorBody(fields: ErrorFields): OpenAIErrorBody {
  const { status } = fields;
  const fallback: ErrorDefaults = byStatus[status] ?? {
    message: STATUS_CODES[status] ?? `Upstream error ${status}`,
    type: status >= 500 ? 'server_error' : 'invalid_request_error',
    code: null,
  };
  const code = fields.code === undefined ? fallback.code : fields.code;
  const known = code === null ? undefined : byCode[code];
  return {
    error: {
      message: fields.message ?? known?.message ?? fallback.message,
      type: fields.type ?? known?.type ?? fallback.type,
      param: fields.param === undefined ? (known?.param ?? fallback.param ?? null) : fields.param,
      code,
    },
  };
}
