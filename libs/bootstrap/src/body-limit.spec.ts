import { Body, Controller, Module, Post } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformEnv } from '@xyp/config';
import { startService, type RunningService } from './run-service';

@Controller()
class EchoController {
  @Post('echo')
  echo(@Body() body: { text?: string }): { length: number } {
    return { length: body.text?.length ?? 0 };
  }
}

@Module({ controllers: [EchoController] })
class EchoModule {}

/** A service started the way every service starts (`startService`), on a real HTTP port. */
describe('HTTP request body limit (XYP_HTTP_MAX_BODY_BYTES)', () => {
  let running: RunningService<typeof PlatformEnv>;

  beforeAll(async () => {
    running = await startService(
      { name: 'body-limit', env: PlatformEnv, module: () => ({ module: EchoModule }), httpPort: () => 0 },
      { XYP_HTTP_MAX_BODY_BYTES: '4096' },
    );
  });
  afterAll(() => running?.app.close());

  const post = (type: string, body: string) => fetch(`${running.httpUrl}/echo`, { method: 'POST', headers: { 'content-type': type }, body });

  it('takes a JSON or form body within the limit', async () => {
    const json = await post('application/json', JSON.stringify({ text: 'x'.repeat(3000) }));
    expect(json.status).toBe(201);
    expect(await json.json()).toEqual({ length: 3000 });
    expect((await post('application/x-www-form-urlencoded', `text=${'y'.repeat(100)}`)).status).toBe(201);
  });

  it('refuses a larger one with 413 before the handler runs', async () => {
    expect((await post('application/json', JSON.stringify({ text: 'x'.repeat(5000) }))).status).toBe(413);
    expect((await post('application/x-www-form-urlencoded', `text=${'y'.repeat(5000)}`)).status).toBe(413);
  });
});
