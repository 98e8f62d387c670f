import type { Attributes } from '@opentelemetry/api';
import type { SluiceEmitter } from '@sluice/core';
import type { CallTelemetry } from './call-telemetry.js';
import { CIRCUIT_STATE_VALUE, type Instruments } from './instruments.js';
import { ATTR } from './semconv.js';

/**
 * The events of other sluice packages this package records. Their payloads
 * are read as plain records: this package imports none of them, and some
 * (cost's) change names between releases, so both spellings are heard.
 */
const CALL_EVENTS = [
  'retry',
  'retry-stop',
  'limit-wait',
  'limit-reject',
  'limit-pause',
  'context-trim',
  'cost',
  'budget-warning',
  'budget-reject',
  'budget-exceeded',
  'cost-anomaly',
  'anomaly',
  'price-unknown',
  'unknown-model',
  'cache-hit',
  'cache-miss',
  'store-error',
] as const;

const CIRCUIT_EVENTS = ['circuit-open', 'circuit-half-open', 'circuit-close'] as const;

type Payload = Readonly<Record<string, unknown>>;

/** An emitter seen untyped: the events listened to are declared by packages this one does not import. */
interface LooseEmitter {
  on(event: string, listener: (payload: Payload) => void): unknown;
}

/** Payload fields never copied onto a span: the call id (already the span's), caller labels, raw errors. */
const SKIPPED = new Set(['id', 'tags', 'error']);

/** `delayMs` → `delay_ms`, the attribute naming of the conventions. */
function snake(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/**
 * A payload's scalar fields as event attributes (nested objects and
 * non-finite numbers, such as an isolated circuit's `Infinity`, are left out).
 *
 * @param payload - an event's payload
 */
export function payloadAttributes(payload: Payload): Attributes {
  const attributes: Attributes = {};
  for (const [key, value] of Object.entries(payload)) {
    if (SKIPPED.has(key)) continue;
    if (typeof value === 'string' || typeof value === 'boolean') attributes[snake(key)] = value;
    else if (typeof value === 'number' && Number.isFinite(value)) attributes[snake(key)] = value;
    else if (Array.isArray(value) && value.every((entry) => typeof entry === 'string')) attributes[snake(key)] = value as string[];
  }
  return attributes;
}

/**
 * Hears a pipeline's events once, whatever the number of calls in flight,
 * and hands each to the call it names (`id`), so a call's cost stays flat
 * in the calls beside it. Circuit changes name no call: they go to the
 * calls in flight through that circuit, and to the `sluice.circuit.state` gauge.
 */
export class EventRouter {
  private readonly calls = new Map<string, CallTelemetry>();

  constructor(
    emitter: SluiceEmitter,
    private readonly instruments: Instruments,
  ) {
    const loose = emitter as unknown as LooseEmitter;
    for (const name of CALL_EVENTS) loose.on(name, (payload) => this.onCallEvent(name, payload));
    for (const name of CIRCUIT_EVENTS) loose.on(name, (payload) => this.onCircuitEvent(name, payload));
  }

  /** Starts routing a call's events to its telemetry; returns the function that stops it. */
  add(id: string, call: CallTelemetry): () => void {
    this.calls.set(id, call);
    return () => {
      if (this.calls.get(id) === call) this.calls.delete(id);
    };
  }

  /** The telemetry of the call `id`, while it is in flight. */
  get(id: string): CallTelemetry | undefined {
    return this.calls.get(id);
  }

  private onCallEvent(name: string, payload: Payload): void {
    const id = payload['id'];
    const call = typeof id === 'string' ? this.calls.get(id) : undefined;
    if (call === undefined) return;
    call.event(`sluice.${name}`, payloadAttributes(payload));
    const attributes = call.metricAttributes(false);
    if (name === 'retry') {
      const code = payload['code'];
      this.instruments.retries.add(1, typeof code === 'string' ? { ...attributes, [ATTR.errorType]: code } : attributes);
    } else if (name === 'cost') {
      const usd = payload['usd'];
      if (typeof usd === 'number' && Number.isFinite(usd) && usd >= 0) this.instruments.cost.add(usd, attributes);
      if (typeof usd === 'number' && Number.isFinite(usd)) call.span.setAttribute('sluice.cost.usd', usd);
    } else if (name === 'cache-hit') {
      this.instruments.cacheHits.add(1, attributes);
    }
  }

  private onCircuitEvent(name: string, payload: Payload): void {
    const key = payload['key'];
    if (typeof key !== 'string') return;
    const state = name === 'circuit-open' ? 'open' : name === 'circuit-half-open' ? 'half-open' : 'closed';
    this.instruments.circuitState.record(CIRCUIT_STATE_VALUE[state] ?? 0, { 'sluice.circuit.key': key });
    const attributes = payloadAttributes(payload);
    for (const call of this.calls.values()) {
      if (call.circuitKey() === key) call.event(`sluice.${name}`, attributes);
    }
  }
}
