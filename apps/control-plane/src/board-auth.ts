import type { NextFunction, Request, Response } from 'express';
import { sameSecret } from '@xyp/config';

/** HTTP basic authentication for Bull Board; a request without valid credentials gets 401. */
export function basicAuth(user: string, password: string) {
  const expected = Buffer.from(`${user}:${password}`);
  return (request: Request, response: Response, next: NextFunction): void => {
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64') : Buffer.alloc(0);
    if (sameSecret(given, expected)) return next();
    response.setHeader('WWW-Authenticate', 'Basic realm="Bull Board", charset="UTF-8"');
    response.status(401).send('authentication required');
  };
}
