// Test fixture (not published): a few entries in the shape of LiteLLM's
// model_prices_and_context_window.json, written from its documented fields.

/** A small price file: good chat entries, other modes, other providers, and malformed entries. */
export const liteLLMFixture: Record<string, unknown> = {
  sample_spec: {
    max_tokens: 'LEGACY parameter. set to max_output_tokens if provider specifies it. IF not set to max_input_tokens, if provider specifies it.',
    max_input_tokens: 'max input tokens, if the provider specifies it. if not default to max_tokens',
    max_output_tokens: 'max output tokens, if the provider specifies it. if not default to max_tokens',
    input_cost_per_token: 0.0,
    output_cost_per_token: 0.0,
    litellm_provider: 'one of https://docs.litellm.ai/docs/providers',
    mode: 'one of: chat, embedding, completion, image_generation, audio_transcription, audio_speech, moderation, rerank',
    supports_function_calling: true,
  },
  'gpt-4.1': {
    max_tokens: 32768, max_input_tokens: 1047576, max_output_tokens: 32768,
    input_cost_per_token: 1.8e-6, output_cost_per_token: 7.2e-6, cache_read_input_token_cost: 4.5e-7,
    litellm_provider: 'openai', mode: 'chat', supports_function_calling: true, supports_prompt_caching: true,
  },
  'gpt-4o': {
    max_tokens: 16384, max_input_tokens: 128000, max_output_tokens: 16384,
    input_cost_per_token: 2.5e-6, output_cost_per_token: 1e-5, cache_read_input_token_cost: 1.25e-6,
    litellm_provider: 'openai', mode: 'chat',
  },
  'gpt-4o-2024-05-13': {
    max_tokens: 4096, max_input_tokens: 128000, max_output_tokens: 4096,
    input_cost_per_token: 5e-6, output_cost_per_token: 1.5e-5,
    litellm_provider: 'openai', mode: 'chat',
  },
  'claude-sonnet-4-5': {
    max_tokens: 64000, max_input_tokens: 200000, max_output_tokens: 64000,
    input_cost_per_token: 3e-6, output_cost_per_token: 1.5e-5, cache_read_input_token_cost: 3e-7,
    input_cost_per_token_above_200k_tokens: 6e-6, output_cost_per_token_above_200k_tokens: 2.25e-5,
    cache_read_input_token_cost_above_200k_tokens: 6e-7, cache_creation_input_token_cost: 3.75e-6,
    litellm_provider: 'anthropic', mode: 'chat',
  },
  'gemini/gemini-2.5-flash': {
    max_tokens: 65535, max_input_tokens: 1048576, max_output_tokens: 65535,
    input_cost_per_token: 3e-7, output_cost_per_token: 2.5e-6, cache_read_input_token_cost: 3e-8,
    litellm_provider: 'gemini', mode: 'chat',
  },
  'deepseek/deepseek-chat': {
    max_tokens: 8192, max_input_tokens: 131072, max_output_tokens: 8192,
    input_cost_per_token: 2.8e-7, output_cost_per_token: 4.2e-7, cache_read_input_token_cost: 2.8e-8,
    litellm_provider: 'deepseek', mode: 'chat',
  },
  'my-litellm-only-model': {
    max_tokens: 4096, input_cost_per_token: 1e-6, output_cost_per_token: 2e-6,
    litellm_provider: 'openai', mode: 'chat',
  },
  'azure/gpt-4.1': {
    max_tokens: 32768, max_input_tokens: 1047576, max_output_tokens: 32768,
    input_cost_per_token: 2.2e-6, output_cost_per_token: 8.8e-6,
    litellm_provider: 'azure', mode: 'chat',
  },
  'text-embedding-3-small': {
    max_tokens: 8191, max_input_tokens: 8191, input_cost_per_token: 2e-8, output_cost_per_token: 0,
    litellm_provider: 'openai', mode: 'embedding',
  },
  'broken-price-model': {
    max_tokens: 4096, input_cost_per_token: 'free', output_cost_per_token: 2e-6,
    litellm_provider: 'openai', mode: 'chat',
  },
  'negative-price-model': {
    max_tokens: 4096, input_cost_per_token: -1e-6, output_cost_per_token: 2e-6,
    litellm_provider: 'openai', mode: 'chat',
  },
  'no-cap-model': {
    max_input_tokens: 8192, input_cost_per_token: 1e-6, output_cost_per_token: 2e-6,
    litellm_provider: 'anthropic', mode: 'chat',
  },
  'cap-over-window-model': {
    max_input_tokens: 4096, max_output_tokens: 8192, input_cost_per_token: 1e-6, output_cost_per_token: 2e-6,
    litellm_provider: 'gemini', mode: 'chat',
  },
  'null-entry-model': null,
};
