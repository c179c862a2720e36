// Kubernetes Events (events.k8s.io/v1) with the same reason strings as conditions and metrics.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeApi } from './kube/client.ts';
import { EVENTS, type KubeObject } from './kube/resources.ts';

export class EventRecorder {
  readonly #client: KubeApi;
  readonly #instance: string;
  readonly #log: Logger;

  constructor(client: KubeApi, instance: string, log: Logger) {
    this.#client = client;
    this.#instance = instance;
    this.#log = log;
  }

  /** Best effort: a lost Event must never fail a reconcile. */
  async record(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    const now = new Date();
    const event: KubeObject = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: {
        name: `${obj.metadata.name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`,
        namespace: obj.metadata.namespace ?? 'default',
      },
      eventTime: now.toISOString().replace('Z', '000Z'),
      reportingController: 'tally.dev/operator',
      reportingInstance: this.#instance,
      action: 'Reconcile',
      type,
      reason,
      note: note.slice(0, 1024),
      regarding: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
      },
    };
    try {
      await this.#client.create(EVENTS, event);
    } catch (err) {
      this.#log.warn({ err, reason }, 'could not record event');
    }
  }
}
