// The web chat: posts to the streaming endpoint and renders the reply as it arrives.
import { askForToken, authHeader, onTokenSaved } from './api-token.js';

const log = document.getElementById('log');
const form = document.getElementById('composer');
const input = document.getElementById('message');

const conversationKey = 'agent.conversationId';
let conversationId = localStorage.getItem(conversationKey) ?? newConversationId();
localStorage.setItem(conversationKey, conversationId);

function newConversationId() {
  return `web-${crypto.randomUUID()}`;
}

function headers() {
  return { 'content-type': 'application/json', ...authHeader() };
}

function addMessage(kind, text) {
  const element = document.createElement('div');
  element.className = `message ${kind}`;
  element.textContent = text;
  log.append(element);
  log.scrollTop = log.scrollHeight;
  return element;
}

async function loadHistory() {
  const response = await fetch(`/api/conversations/${conversationId}/messages`, { headers: headers() });
  if (response.status === 401) {
    askForToken();
    return;
  }
  if (!response.ok) return;
  const { turns } = await response.json();
  for (const turn of turns) {
    addMessage('user', turn.user);
    addMessage('agent', turn.assistant);
  }
}

async function send(text) {
  addMessage('user', text);
  const bubble = addMessage('agent', '');
  bubble.dataset.state = 'streaming';
  const response = await fetch(`/api/conversations/${conversationId}/messages/stream`, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ text, eventId: crypto.randomUUID() }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
    if (response.status === 401) askForToken();
    bubble.className = 'message error';
    bubble.textContent = body.error?.message ?? 'request failed';
    bubble.dataset.state = 'error';
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf('\n\n');
    while (end !== -1) {
      handleEvent(bubble, buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
    }
  }
  if (bubble.dataset.state === 'streaming') {
    // The connection closed without a final event: say so instead of leaving half a reply.
    bubble.className = 'message error';
    bubble.textContent += ' [connection lost before the reply finished]';
    bubble.dataset.state = 'error';
  }
}

function handleEvent(bubble, block) {
  const event = /^event: (.*)$/m.exec(block)?.[1];
  const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
  if (event === 'delta') bubble.textContent += data.text;
  if (event === 'done') {
    bubble.textContent = data.reply.text;
    bubble.dataset.state = 'done';
  }
  if (event === 'error') {
    bubble.className = 'message error';
    bubble.textContent = data.error.message;
    bubble.dataset.state = 'error';
  }
  log.scrollTop = log.scrollHeight;
}

let historyLoaded = Promise.resolve();

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  // Old turns must be on screen before a new one, or they would render below it.
  await historyLoaded;
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  await send(text).catch((error) => addMessage('error', String(error)));
});
input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});
onTokenSaved(() => {
  log.replaceChildren();
  historyLoaded = loadHistory().catch(() => {});
});
document.getElementById('new-conversation').addEventListener('click', () => {
  conversationId = newConversationId();
  localStorage.setItem(conversationKey, conversationId);
  log.replaceChildren();
});

historyLoaded = loadHistory().catch(() => {});
