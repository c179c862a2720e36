import { describe, expect, it } from 'vitest';
import { createFlowMetrics } from './metrics.ts';

describe('createFlowMetrics', () => {
  it('keeps each worker on its own registry, with bounded labels', async () => {
    const a = createFlowMetrics({ flow: 'ns/a', channel: 'web' }, { processMetrics: false });
    const b = createFlowMetrics({ flow: 'ns/b', channel: 'web' }, { processMetrics: false });
    a.received('webhook');
    a.received('webhook', true);
    a.order({ amount: '10.10', currency: 'EUR' });
    a.order({ amount: '0.20', currency: 'EUR' });
    const text = await a.registry.metrics();
    expect(text).toContain(
      'tally_flow_messages_received_total{flow="ns/a",channel="web",source="webhook"} 2',
    );
    expect(text).toContain(
      'tally_flow_messages_deduplicated_total{flow="ns/a",channel="web",source="webhook"} 1',
    );
    expect(text).toContain('tally_orders_total{channel="web",currency="EUR"} 2');
    expect(text).toContain('tally_order_value_total{channel="web",currency="EUR"} 10.3\n');
    expect(text).toContain('tally_flow_in_flight{flow="ns/a",channel="web"} 0');
    expect(await b.registry.metrics()).not.toContain('ns/a');
  });

  it('sums order value exactly per currency, in currency units', async () => {
    const m = createFlowMetrics({ flow: 'ns/a', channel: 'web' }, { processMetrics: false });
    for (let i = 0; i < 1000; i++) m.order({ amount: '0.10', currency: 'USD' });
    m.order({ amount: '1000', currency: 'JPY' });
    m.order({ amount: '1.234', currency: 'KWD' });
    m.order({ amount: '-5.00', currency: 'USD' }); // a refund counts as an order, adds no value
    expect(() => m.order({ amount: '1.234', currency: 'USD' })).toThrow(/decimal places/);
    const text = await m.registry.metrics();
    expect(text).toContain('tally_order_value_total{channel="web",currency="USD"} 100\n');
    expect(text).toContain('tally_order_value_total{channel="web",currency="JPY"} 1000\n');
    expect(text).toContain('tally_order_value_total{channel="web",currency="KWD"} 1.234\n');
    expect(text).toContain('tally_orders_total{channel="web",currency="USD"} 1001\n');
  });

  it('shows lag, end-to-end latency and circuit state with bounded labels', async () => {
    const m = createFlowMetrics({ flow: 'ns/a', channel: 'web' }, { processMetrics: false });
    m.consumerLag({ pending: 12, ackPending: 3 });
    m.endToEnd(0.2);
    m.circuit('erp', 'closed', false);
    m.circuit('erp', 'open');
    const text = await m.registry.metrics();
    expect(text).toContain('tally_flow_consumer_pending_messages{flow="ns/a",channel="web"} 12\n');
    expect(text).toContain('tally_flow_consumer_ack_pending_messages{flow="ns/a",channel="web"} 3\n');
    expect(text).toContain('tally_flow_end_to_end_seconds_count{flow="ns/a",channel="web"} 1\n');
    expect(text).toContain('tally_flow_sink_circuit_state{flow="ns/a",sink="erp",state="open"} 1\n');
    expect(text).toContain('tally_flow_sink_circuit_state{flow="ns/a",sink="erp",state="closed"} 0\n');
    expect(text).toContain(
      'tally_flow_sink_circuit_transitions_total{flow="ns/a",sink="erp",state="open"} 1\n',
    );
    expect(text).not.toContain(
      'tally_flow_sink_circuit_transitions_total{flow="ns/a",sink="erp",state="closed"}',
    );
  });

  it('names every metric by the Prometheus conventions', async () => {
    const m = createFlowMetrics({ flow: 'ns/a', channel: 'web' }, { processMetrics: false });
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name).sort();
    expect(names).toEqual([
      'tally_flow_consumer_ack_pending_messages',
      'tally_flow_consumer_pending_messages',
      'tally_flow_end_to_end_seconds',
      'tally_flow_in_flight',
      'tally_flow_messages_dead_lettered_total',
      'tally_flow_messages_deduplicated_total',
      'tally_flow_messages_delivered_total',
      'tally_flow_messages_failed_total',
      'tally_flow_messages_received_total',
      'tally_flow_messages_retried_total',
      'tally_flow_processing_seconds',
      'tally_flow_sink_circuit_state',
      'tally_flow_sink_circuit_transitions_total',
      'tally_flow_sink_request_seconds',
      'tally_flow_sink_writes_total',
      'tally_order_value_total',
      'tally_orders_total',
      'tally_webhook_requests_total',
    ]);
  });
});
