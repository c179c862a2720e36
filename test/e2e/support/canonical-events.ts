// Publishes canonical events exactly as a flow does: a CloudEvents envelope on the namespace's
// canonical subject, with the event id as Nats-Msg-Id. Lets reconciliation tests generate data.
import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { canonicalSubject } from '../../../runtime/nats/canonical.ts';

export async function publishCanonical(
  nc: NatsConnection,
  namespace: string,
  entity: string,
  channel: string,
  key: string,
  data: Record<string, unknown>,
): Promise<void> {
  const id = randomUUID();
  const event = {
    specversion: '1.0',
    id,
    source: `/tally/${namespace}/flows/${channel}-${entity.toLowerCase()}`,
    type: `dev.tally.${entity.toLowerCase()}.v1`,
    subject: key,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data,
    tallyentity: entity,
    tallychannel: channel,
    tallyflow: `${namespace}/${channel}-${entity.toLowerCase()}`,
    tallymapping: `${namespace}/${channel}-${entity.toLowerCase()}`,
    tallymappingversion: '1',
    tallysourceid: id,
    tallyversion: '1',
    traceparent: `00-${randomUUID().replaceAll('-', '')}-${randomUUID().replaceAll('-', '').slice(0, 16)}-01`,
  };
  await jetstream(nc).publish(canonicalSubject(namespace, entity, channel), JSON.stringify(event), {
    msgID: id,
  });
}
