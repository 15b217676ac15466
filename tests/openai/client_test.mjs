// Drives a running `cairn serve` with the official OpenAI client library, the way
// every OpenAI-speaking tool does. tests/openai/run.sh starts the servers and sets:
//   CAIRN_URL          base URL of the server with the chat model (http://127.0.0.1:PORT)
//   CAIRN_MODEL        that model's id
//   CAIRN_EMBED_URL    base URL of the server with the embedding model (may equal CAIRN_URL)
//   CAIRN_EMBED_MODEL  that model's id
//   CAIRN_EMBED_DIM    the embedding width the model was synthesized with
// Prints one `ok NAME` or `FAIL NAME: why` line per check; exits 1 when any failed.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const MODEL = env('CAIRN_MODEL');
const EMBED_MODEL = env('CAIRN_EMBED_MODEL');
const EMBED_DIM = Number(env('CAIRN_EMBED_DIM'));
// maxRetries 0: a retried 429/5xx would hide the first answer; the timeout bounds a hung server.
const client = new OpenAI({ baseURL: `${env('CAIRN_URL')}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
const embedClient = new OpenAI({ baseURL: `${env('CAIRN_EMBED_URL')}/v1`, apiKey: 'unused', maxRetries: 0,
  timeout: 60_000 });

let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    const detail = e instanceof OpenAI.APIError ? ` (HTTP ${e.status}: ${JSON.stringify(e.error)})` : '';
    console.log(`FAIL ${name}: ${e.message}${detail}`);
  }
}

const MAX_TOKENS = 8;
const chatParams = {
  model: MODEL,
  messages: [
    { role: 'system', content: 'You are a terse assistant on an edge node.' },
    { role: 'user', content: 'Which pump is overheating?' },
  ],
  max_tokens: MAX_TOKENS,
  temperature: 0,
  seed: 42,
};

function checkUsage(usage, finish) {
  assert.ok(usage, 'usage is missing');
  assert.ok(Number.isInteger(usage.prompt_tokens) && usage.prompt_tokens > 0, `prompt_tokens ${usage.prompt_tokens}`);
  assert.ok(Number.isInteger(usage.completion_tokens) && usage.completion_tokens >= 1 &&
            usage.completion_tokens <= MAX_TOKENS, `completion_tokens ${usage.completion_tokens}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, 'total_tokens');
  if (finish === 'length') assert.equal(usage.completion_tokens, MAX_TOKENS, 'finish_reason length below max_tokens');
}

// Reads a stream of chat chunks: the text, the finish reason, the usage chunk if any.
async function readChatStream(stream) {
  let text = '', finish = null, usage = null, id = null, sawRole = false, choiceChunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, MODEL);
    if (id === null) id = chunk.id;
    assert.equal(chunk.id, id, 'chunk ids differ within one stream');
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices || chunk.choices.length === 0) continue;  // the usage chunk has none
    assert.equal(chunk.choices.length, 1);
    const c = chunk.choices[0];
    assert.equal(c.index, 0);
    assert.equal(finish, null, 'a chunk with choices came after the one with finish_reason');
    if (choiceChunks === 0) assert.equal(c.delta.role, 'assistant', 'the first chunk does not carry role assistant');
    if (c.delta.role) sawRole = true;
    if (typeof c.delta.content === 'string') text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
    choiceChunks++;
  }
  assert.ok(sawRole, 'no chunk carried the role');
  assert.ok(choiceChunks >= 2, `only ${choiceChunks} chunks`);
  return { text, finish, usage };
}

let greedy = null;  // the non-streaming answer the streaming ones must equal

await check('models_list', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.includes(MODEL), `${MODEL} not in ${JSON.stringify(ids)}`);
});

await check('chat_non_streaming', async () => {
  const r = await client.chat.completions.create(chatParams);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.ok(typeof r.id === 'string' && r.id.length > 0, 'id');
  assert.ok(Number.isInteger(r.created) && r.created > 1.6e9, `created ${r.created}`);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
  checkUsage(r.usage, c.finish_reason);
  greedy = { text: c.message.content, finish: c.finish_reason, usage: r.usage };
});

await check('chat_non_streaming_repeats', async () => {
  assert.ok(greedy, 'no first answer');
  const r = await client.chat.completions.create(chatParams);
  assert.equal(r.choices[0].message.content, greedy.text, 'temperature 0 gave another text');
});

await check('chat_streaming_equals_non_streaming', async () => {
  assert.ok(greedy, 'no non-streaming answer to compare with');
  const stream = await client.chat.completions.create({ ...chatParams, stream: true });
  const s = await readChatStream(stream);
  assert.equal(s.text, greedy.text, 'streamed text differs from the non-streaming text');
  assert.equal(s.finish, greedy.finish, 'finish_reason differs');
});

await check('chat_streaming_include_usage', async () => {
  assert.ok(greedy, 'no non-streaming answer to compare with');
  const stream = await client.chat.completions.create({
    ...chatParams, stream: true, stream_options: { include_usage: true } });
  const s = await readChatStream(stream);
  assert.equal(s.text, greedy.text);
  checkUsage(s.usage, s.finish);
  assert.deepEqual({ ...s.usage, prompt_tokens_details: undefined, completion_tokens_details: undefined },
                   { ...greedy.usage, prompt_tokens_details: undefined, completion_tokens_details: undefined });
});

await check('chat_parallel_streams_equal_single', async () => {
  assert.ok(greedy, 'no non-streaming answer to compare with');
  // Four sequences decoded together must each give what one alone gives.
  const runs = await Promise.all([0, 1, 2, 3].map(async () =>
    readChatStream(await client.chat.completions.create({ ...chatParams, stream: true }))));
  for (const s of runs) assert.equal(s.text, greedy.text, 'a batched sequence differs from the single one');
});

await check('chat_stop_string', async () => {
  assert.ok(greedy && greedy.text.length >= 2, 'the greedy text is too short to stop inside');
  const stop = greedy.text.slice(1, 2).trim() ? greedy.text.slice(1, 2) : greedy.text.slice(0, 1);
  const cut = greedy.text.indexOf(stop);
  const r = await client.chat.completions.create({ ...chatParams, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, greedy.text.slice(0, cut), 'the text does not end before the stop string');
});

await check('completions', async () => {
  const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: MAX_TOKENS, temperature: 0, seed: 3 };
  const r = await client.completions.create(params);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, MODEL);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(typeof c.text, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
  checkUsage(r.usage, c.finish_reason);
  let text = '', finish = null, chunks = 0;
  for await (const chunk of await client.completions.create({ ...params, stream: true })) {
    assert.equal(chunk.object, 'text_completion');
    if (!chunk.choices || chunk.choices.length === 0) continue;
    assert.equal(finish, null, 'a chunk came after the one with finish_reason');
    text += chunk.choices[0].text ?? '';
    finish = chunk.choices[0].finish_reason ?? null;
    chunks++;
  }
  assert.ok(chunks >= 1, 'no chunks');
  assert.equal(text, c.text, 'streamed completion differs from the non-streaming one');
  assert.equal(finish, c.finish_reason);
});

function checkEmbeddings(r, n) {
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, n);
  r.data.forEach((d, i) => {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, EMBED_DIM, `dimension ${d.embedding.length}, expected ${EMBED_DIM}`);
    let norm = 0;
    for (const x of d.embedding) {
      assert.ok(Number.isFinite(x), 'a value is not finite');
      norm += x * x;
    }
    assert.ok(Math.abs(Math.sqrt(norm) - 1) < 1e-3, `L2 norm ${Math.sqrt(norm)}, expected 1`);
  });
  assert.ok(r.usage && r.usage.prompt_tokens > 0, 'usage.prompt_tokens');
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens, 'usage.total_tokens');
}

const texts = ['pump seven is overheating', 'valve three closed at noon'];
let floats = null;
await check('embeddings_float', async () => {
  const r = await embedClient.embeddings.create({ model: EMBED_MODEL, input: texts, encoding_format: 'float' });
  checkEmbeddings(r, 2);
  floats = r.data.map((d) => d.embedding);
  const dot = floats[0].reduce((s, x, i) => s + x * floats[1][i], 0);
  assert.ok(dot < 0.9999, 'two different texts got the same vector');
});

await check('embeddings_default_base64', async () => {
  // Without encoding_format the client asks for base64 and decodes little-endian float32.
  const r = await embedClient.embeddings.create({ model: EMBED_MODEL, input: texts });
  checkEmbeddings(r, 2);
  assert.ok(floats, 'no float answer to compare with');
  r.data.forEach((d, i) => d.embedding.forEach((x, j) =>
    assert.ok(Math.abs(x - floats[i][j]) < 1e-6, `base64 value [${i}][${j}] ${x} != ${floats[i][j]}`)));
});

await check('embeddings_single_string', async () => {
  const r = await embedClient.embeddings.create({ model: EMBED_MODEL, input: texts[0], encoding_format: 'float' });
  checkEmbeddings(r, 1);
  if (floats) r.data[0].embedding.forEach((x, j) => assert.ok(Math.abs(x - floats[0][j]) < 1e-5, 'batch != single'));
});

async function expectError(cls, status, fn) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof cls, `got ${e.constructor.name} (${e.status}): ${e.message}`);
    assert.equal(e.status, status);
    assert.ok(e.error && typeof e.error.message === 'string' && e.error.message.length > 0,
              `no error.message in ${JSON.stringify(e.error)}`);
    return e;
  }
  assert.fail(`no error; expected ${status}`);
}

await check('error_unknown_model_chat', async () => {
  await expectError(OpenAI.NotFoundError, 404, () =>
    client.chat.completions.create({ ...chatParams, model: 'no-such-model' }));
});
await check('error_unknown_model_streaming', async () => {
  await expectError(OpenAI.NotFoundError, 404, () =>
    client.chat.completions.create({ ...chatParams, model: 'no-such-model', stream: true }));
});
await check('error_unknown_model_embeddings', async () => {
  await expectError(OpenAI.NotFoundError, 404, () =>
    embedClient.embeddings.create({ model: 'no-such-model', input: 'x', encoding_format: 'float' }));
});
await check('error_bad_temperature_type', async () => {
  await expectError(OpenAI.BadRequestError, 400, () =>
    client.chat.completions.create({ ...chatParams, temperature: 'hot' }));
});
await check('error_negative_max_tokens', async () => {
  await expectError(OpenAI.BadRequestError, 400, () =>
    client.chat.completions.create({ ...chatParams, max_tokens: -3 }));
});
await check('error_messages_not_array', async () => {
  await expectError(OpenAI.BadRequestError, 400, () =>
    client.chat.completions.create({ ...chatParams, messages: 'hello' }));
});
await check('error_n_above_one', async () => {
  await expectError(OpenAI.BadRequestError, 400, () => client.chat.completions.create({ ...chatParams, n: 2 }));
});
await check('server_still_answers', async () => {
  const r = await client.chat.completions.create(chatParams);
  if (greedy) assert.equal(r.choices[0].message.content, greedy.text);
});

process.exit(failed ? 1 : 0);
