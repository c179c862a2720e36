// Reading a request body with a hard size limit: a declared Content-Length over the limit is
// refused before reading anything; a streamed body stops at the limit.

import type { IncomingMessage } from 'node:http';
import { CodedError } from '../../api/errors.ts';

export const BodyErrorCode = {
  TooLarge: 'BODY_TOO_LARGE',
  Aborted: 'BODY_ABORTED',
} as const;
export type BodyErrorCode = (typeof BodyErrorCode)[keyof typeof BodyErrorCode];

export class BodyError extends CodedError<BodyErrorCode> {
  override name = 'BodyError';
}

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(
      new BodyError(
        BodyErrorCode.TooLarge,
        `request body of ${declared} bytes exceeds the limit of ${maxBytes}`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        reject(new BodyError(BodyErrorCode.TooLarge, `request body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(
        new BodyError(BodyErrorCode.Aborted, `request body could not be read: ${err.message}`, {
          cause: err,
        }),
      );
    };
    const onAborted = () => onError(new Error('client aborted'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
