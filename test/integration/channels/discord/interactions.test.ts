import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ACK_TEXT, NOT_TAKEN_TEXT } from '../../../../src/channels/discord/discord-adapter.js';
import { type FakeDiscord, startFakeDiscord } from '../../../fakes/fake-discord.js';
import {
  connected,
  defined,
  eventually,
  guildChannel,
  type Started,
  startAdapter,
} from './discord-harness.js';

let fake: FakeDiscord;
let run: Started;
const USER = '310000000000000001';

beforeAll(async () => {
  fake = await startFakeDiscord();
});
afterAll(async () => {
  await fake.close();
});
afterEach(async () => {
  await run?.adapter.stop();
});

describe('discord slash commands', () => {
  it('acknowledges within 3 s and hands the agent `/name args`', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    const channelId = guildChannel(fake);
    const interaction = fake.sendInteraction({
      name: 'link',
      options: { text: ' ABC-123 ' },
      channelId,
      userId: USER,
    });
    const [event] = await eventually(() => {
      expect(run.sink.events).toHaveLength(1);
      return run.sink.events;
    });
    const callback = defined(
      fake.interactionCallbacks.find((c) => c.interactionId === interaction.id),
      'the interaction callback',
    );
    expect(callback).toMatchObject({ type: 4, content: ACK_TEXT, withResponse: true });
    expect(callback.elapsedMs).toBeLessThan(3000);
    expect(event).toEqual({
      eventId: interaction.id,
      userId: USER,
      text: '/link ABC-123',
      address: { channel: 'discord', conversation: channelId, thread: callback.responseMessageId },
    });
    // The answer replies to the acknowledgement, as a plain channel message.
    await run.adapter.send(defined(event, 'an event').address, 'Linked.');
    expect(fake.sent.at(-1)).toMatchObject({
      channelId,
      content: 'Linked.',
      replyTo: callback.responseMessageId,
    });
  });

  it('takes a command without options in a DM, acknowledged before the agent has it', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    // The agent's store is slow: acknowledging must not wait for it.
    run.sink.failNext(1);
    const dm = '410000000000000001';
    const interaction = fake.sendInteraction({ name: 'status', channelId: dm, userId: USER });
    await eventually(() =>
      expect(fake.interactionCallbacks.map((c) => c.interactionId)).toContain(interaction.id),
    );
    await eventually(() => expect(run.sink.events).toHaveLength(1));
    expect(run.sink.events[0]).toMatchObject({
      text: '/status',
      userId: USER,
      address: { conversation: dm },
    });
  });

  it('tells the user when the agent could not take the command', async () => {
    run = await startAdapter(fake, { backoff: { receiveAttempts: 2 } });
    await connected(run.adapter);
    run.sink.failNext(5);
    const channelId = guildChannel(fake);
    const interaction = fake.sendInteraction({ name: 'help', channelId, userId: USER });
    await eventually(() =>
      expect(fake.webhookEdits).toContainEqual({
        token: interaction.token,
        target: '@original',
        content: NOT_TAKEN_TEXT,
      }),
    );
    expect(run.sink.events).toHaveLength(0);
  });
});
