// The official openai client against a running `tessera serve` (stories260K.gguf, started with --api-key).
// Run by OpenAiClientSuiteTest with TESSERA_URL (http://127.0.0.1:PORT), TESSERA_API_KEY, TESSERA_MODEL and
// TESSERA_REFERENCE (stories260K.reference.json: greedy text computed independently of Tessera).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const url = required('TESSERA_URL');
const apiKey = required('TESSERA_API_KEY');
const model = required('TESSERA_MODEL');
const reference = JSON.parse(readFileSync(required('TESSERA_REFERENCE'), 'utf8'));
const onceUponATime = reference.cases.find((c) => c.prompt === 'Once upon a time');

const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
}

function assertUsage(usage, { completionTokens, maxTokens } = {}) {
  assert.equal(typeof usage.prompt_tokens, 'number');
  assert.equal(typeof usage.completion_tokens, 'number');
  assert.ok(usage.prompt_tokens > 0, `prompt_tokens ${usage.prompt_tokens}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  if (completionTokens !== undefined) assert.equal(usage.completion_tokens, completionTokens);
  if (maxTokens !== undefined) assert.ok(usage.completion_tokens <= maxTokens);
}

test('models.list names the served model', async () => {
  const page = await client.models.list();
  assert.equal(page.data.length, 1);
  const m = page.data[0];
  assert.equal(m.id, model);
  assert.equal(m.object, 'model');
  assert.equal(typeof m.created, 'number');
  assert.equal(typeof m.owned_by, 'string');
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
});

test('greedy completion continues the reference text', async () => {
  const maxTokens = 12;
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: maxTokens, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.model, model);
  assert.equal(typeof r.created, 'number');
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.finish_reason, 'length');
  assert.ok(c.text.length > 0);
  assert.ok(onceUponATime.greedy_text.startsWith('Once upon a time' + c.text),
    `"Once upon a time${c.text}" is not a prefix of the reference greedy text`);
  // BOS + the prompt's 4 tokens, as in the reference's prompt_token_ids.
  assertUsage(r.usage, { completionTokens: maxTokens });
  assert.equal(r.usage.prompt_tokens, onceUponATime.prompt_token_ids.length);
});

test('chat completion', async () => {
  const maxTokens = 8;
  const r = await client.chat.completions.create({
    model, max_tokens: maxTokens, temperature: 0,
    messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me about Lily.' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
  assertUsage(r.usage, { maxTokens });
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, maxTokens);
  // The ChatML prompt of two messages is far longer than the raw text.
  assert.ok(r.usage.prompt_tokens > 20, `prompt_tokens ${r.usage.prompt_tokens}`);
});

test('streamed chat sends role, deltas, finish_reason, then usage; same text as unstreamed', async () => {
  const request = { model, max_tokens: 10, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] };
  const whole = await client.chat.completions.create(request);
  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  const id = chunks[0].id;
  assert.match(id, /^chatcmpl-/);
  let text = '';
  let finish = null;
  for (const [i, chunk] of chunks.entries()) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.id, id, 'every chunk carries the same id');
    assert.equal(chunk.model, model);
    const last = i === chunks.length - 1;
    if (last) {
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
      assertUsage(chunk.usage);
      assert.deepEqual(chunk.usage, whole.usage);
    } else {
      assert.ok(chunk.usage === null || chunk.usage === undefined, 'only the last chunk has usage');
      assert.equal(chunk.choices.length, 1);
      const choice = chunk.choices[0];
      assert.equal(choice.index, 0);
      if (i === 0) assert.equal(choice.delta.role, 'assistant');
      if (choice.delta.content) text += choice.delta.content;
      if (choice.finish_reason) {
        assert.equal(finish, null, 'one finish_reason');
        finish = choice.finish_reason;
      }
    }
  }
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(text, whole.choices[0].message.content);
});

test('stop ends the completion before the stop string', async () => {
  const full = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
  const text = full.choices[0].text;
  const at = text.indexOf('little');
  assert.ok(at > 0, `greedy text "${text}" has no "little"`);
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, stop: ['little', 'zzz'] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].text, text.substring(0, at));
  assert.ok(r.usage.completion_tokens < full.usage.completion_tokens);
  const chat = await client.chat.completions.create({
    model, max_tokens: 12, temperature: 0, stop: 'e', messages: [{ role: 'user', content: 'Hello' }],
  });
  assert.ok(!chat.choices[0].message.content.includes('e'), chat.choices[0].message.content);
});

test('n=2 returns two choices with their own indices', async () => {
  const maxTokens = 6;
  const r = await client.completions.create({ model, prompt: 'One day', max_tokens: maxTokens, temperature: 1, seed: 7, n: 2 });
  assert.equal(r.choices.length, 2);
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1]);
  for (const c of r.choices) assert.ok(['stop', 'length'].includes(c.finish_reason));
  assertUsage(r.usage, { maxTokens: 2 * maxTokens });
  if (r.choices.every((c) => c.finish_reason === 'length')) assert.equal(r.usage.completion_tokens, 2 * maxTokens);
  const chat = await client.chat.completions.create({ model, max_tokens: maxTokens, n: 2, messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(chat.choices.length, 2);
  assert.deepEqual(chat.choices.map((c) => c.index).sort(), [0, 1]);
});

test('completions logprobs=2', async () => {
  const maxTokens = 5;
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: maxTokens, temperature: 0, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.ok(lp, 'logprobs present');
  assert.equal(lp.tokens.length, r.usage.completion_tokens);
  assert.equal(lp.tokens.join(''), r.choices[0].text);
  assert.equal(lp.token_logprobs.length, lp.tokens.length);
  assert.equal(lp.top_logprobs.length, lp.tokens.length);
  assert.equal(lp.text_offset.length, lp.tokens.length);
  for (let i = 0; i < lp.tokens.length; i++) {
    assert.ok(lp.token_logprobs[i] <= 0, `logprob ${lp.token_logprobs[i]}`);
    const top = Object.entries(lp.top_logprobs[i]);
    assert.ok(top.length >= 1 && top.length <= 2, `${top.length} top logprobs`);
    // Greedy: the chosen token is the most likely one.
    assert.ok(Math.abs(Math.max(...top.map(([, v]) => v)) - lp.token_logprobs[i]) < 1e-4);
    if (i > 0) assert.equal(lp.text_offset[i], lp.text_offset[i - 1] + lp.tokens[i - 1].length);
  }
});

test('completions echo with logprobs scores the prompt (as lm-evaluation-harness asks)', async () => {
  const prompt = 'Once upon a time, there was';
  const r = await client.completions.create({ model, prompt, max_tokens: 1, temperature: 0, logprobs: 1, echo: true });
  const c = r.choices[0], lp = c.logprobs;
  assert.ok(c.text.startsWith(prompt), c.text);
  // Every prompt token (BOS included) and the generated one.
  assert.equal(lp.tokens.length, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(lp.token_logprobs[0], null);
  assert.equal(lp.top_logprobs[0], null);
  for (let i = 1; i < lp.tokens.length; i++) {
    assert.ok(lp.token_logprobs[i] <= 0, `logprob ${lp.token_logprobs[i]}`);
    assert.equal(Object.keys(lp.top_logprobs[i]).length, 1);
    assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1] && lp.text_offset[i] <= c.text.length);
  }
});

test('chat logprobs with top_logprobs=2', async () => {
  const r = await client.chat.completions.create({
    model, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2, messages: [{ role: 'user', content: 'Once upon a time' }],
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
  for (const t of content) {
    assert.equal(typeof t.token, 'string');
    assert.ok(t.logprob <= 0);
    assert.ok(Array.isArray(t.bytes));
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob, 'top_logprobs sorted');
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4, 'greedy picks the top token');
  }
});

test('a wrong API key is a 401 APIError', async () => {
  const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => {
    assert.ok(e instanceof OpenAI.APIError, `${e}`);
    assert.ok(e instanceof OpenAI.AuthenticationError, `${e}`);
    assert.equal(e.status, 401);
    assert.equal(typeof e.error.message, 'string');
    return true;
  });
});

test('temperature 5 is a 400 naming the parameter', async () => {
  await assert.rejects(
    client.completions.create({ model, prompt: 'Hi', max_tokens: 2, temperature: 5 }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `${e}`);
      assert.equal(e.status, 400);
      assert.equal(e.param, 'temperature');
      assert.equal(e.type, 'invalid_request_error');
      return true;
    });
});
