// What the openai npm package makes of recorded answers: one JSON replay a line on stdin, one JSON read a line on
// stdout. The package comes from the folder named as the first argument (its node_modules), never from the
// network: every request the SDK makes is answered by the fetch override with the recorded status, headers and
// bytes. The first line written is {"version": ...}, the package's version. Each read carries the `id` of its replay:
// replays are written without waiting for the reads before, and a read is matched to its replay by that id, never by
// its place among the lines.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const folder = process.argv[2] ?? process.cwd();
const require = createRequire(join(folder, 'package.json'));
const OpenAI = require('openai');
const { version } = JSON.parse(readFileSync(join(folder, 'node_modules', 'openai', 'package.json'), 'utf8'));
const Client = OpenAI.OpenAI ?? OpenAI.default ?? OpenAI;
const BASE_URL = 'http://replay.invalid/v1';
process.stdout.write(JSON.stringify({ version }) + '\n');

// Two clients for the whole process (building one costs more than a read): replays are read one at a time, so each
// answers with what `answering` holds for the replay at hand.
let answering = async () => {
  throw new Error('no replay at hand');
};
const reader = new Client({ apiKey: 'replay', baseURL: BASE_URL, maxRetries: 0, fetch: (...args) => answering(...args) });

// Sending a message back is only built, never answered: the fetch keeps the body and stops the request there.
class Captured extends Error {}
let captured;
const sender = new Client({
  apiKey: 'replay',
  baseURL: BASE_URL,
  maxRetries: 0,
  fetch: async (url, init) => {
    captured = JSON.parse(init.body);
    throw new Captured('captured');
  },
});

// Only what the SDK's reading depends on: the request's own messages are left out (the answer is replayed
// whatever was sent); sending a message back, it is the only one.
function arguments_(request, messages) {
  return { model: typeof request.model === 'string' ? request.model : '', messages: messages ?? [] };
}

function described(error) {
  const out = { name: error?.constructor?.name ?? 'Error', message: String(error?.message ?? error) };
  if (error && typeof error === 'object' && 'status' in error) {
    out.status = error.status ?? null;
    out.code = error.code ?? null;
    out.type = error.type ?? null;
    out.param = error.param ?? null;
  }
  return out;
}

async function read(replay) {
  answering = async () => new Response(replay.body, { status: replay.status, headers: replay.headers });
  const params = arguments_(replay.request);
  let completion;
  if (replay.stream) {
    const stream = reader.chat.completions.stream({ ...params, stream: true });
    for await (const _ of stream) {
      // the helper accumulates as it goes; reading to the end is what a user's loop does
    }
    completion = await stream.finalChatCompletion();
  } else if (replay.parse) {
    completion = await reader.chat.completions.parse({ ...params, response_format: replay.request.response_format });
  } else {
    completion = await reader.chat.completions.create(params);
  }
  const value = JSON.parse(JSON.stringify(completion));
  const message = completion?.choices?.[0]?.message;
  return { value, history: message === undefined || !replay.send_back ? undefined : await sendBack(replay, message) };
}

async function sendBack(replay, message) {
  captured = undefined;
  try {
    await sender.chat.completions.create(arguments_(replay.request, [message]));
  } catch {
    // the fetch stops every request it is given once it has its body
  }
  const messages = captured?.messages;
  return Array.isArray(messages) && messages.length ? messages[messages.length - 1] : undefined;
}

// Replays wait here as they come in; the reads of those that came together go out in one write, when none waits
// (or every BATCH reads), so that neither side wakes up for every answer.
const BATCH = 64;
const waiting = [];
let closed = false;
let wake;
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line.trim()) waiting.push(line);
  wake?.();
});
lines.on('close', () => {
  closed = true;
  wake?.();
});

let reads = [];
for (;;) {
  if (!waiting.length || reads.length >= BATCH) {
    if (reads.length) process.stdout.write(reads.join(''));
    reads = [];
  }
  if (!waiting.length) {
    if (closed) break;
    await new Promise((resolve) => {
      wake = resolve;
    });
    wake = undefined;
    continue;
  }
  let id = null;
  let out;
  try {
    const replay = JSON.parse(waiting.shift());
    id = replay.id ?? null;
    out = await read(replay);
  } catch (error) {
    out = { error: described(error) };
  }
  reads.push(JSON.stringify({ ...out, id }) + '\n');
}
