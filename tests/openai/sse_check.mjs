// Checks the raw bytes of one server-sent-event response saved by `curl -N -D HEADERS -o BODY`:
//   node sse_check.mjs HEADERS BODY OBJECT
// The status is 200 and Content-Type text/event-stream; the body is a sequence of
// events `data: <one line>\n\n`, each a JSON object whose "object" is OBJECT, and the
// last event is `data: [DONE]`. Prints the reason and exits 1 otherwise.
import { readFileSync } from 'node:fs';

const [headersFile, bodyFile, object] = process.argv.slice(2);
const fail = (why) => {
  console.log(why);
  process.exit(1);
};
// curl -D writes every response's headers; the last block is the final response's.
const blocks = readFileSync(headersFile, 'latin1').split(/\r?\n\r?\n/).filter((b) => b.trim());
const head = blocks[blocks.length - 1].split(/\r?\n/);
if (!/^HTTP\/[0-9.]+ 200\b/.test(head[0])) fail(`status line: ${head[0]}`);
const ctype = head.find((l) => /^content-type:/i.test(l));
if (!ctype || !/^content-type:\s*text\/event-stream\b/i.test(ctype)) fail(`content type: ${ctype}`);

const body = readFileSync(bodyFile, 'utf8');
if (!body.endsWith('\n\n')) fail(`the body does not end with a blank line: ${JSON.stringify(body.slice(-40))}`);
const events = body.slice(0, -2).split('\n\n');
if (events.length < 3) fail(`only ${events.length} events`);
events.forEach((e, i) => {
  if (!e.startsWith('data: ') || e.includes('\n') || e.includes('\r')) {
    fail(`event ${i} is not one 'data: ' line: ${JSON.stringify(e.slice(0, 80))}`);
  }
  const data = e.slice(6);
  if (i === events.length - 1) {
    if (data !== '[DONE]') fail(`the last event is not [DONE]: ${JSON.stringify(data.slice(0, 80))}`);
    return;
  }
  let j;
  try {
    j = JSON.parse(data);
  } catch (err) {
    fail(`event ${i} is not JSON: ${err.message}: ${JSON.stringify(data.slice(0, 80))}`);
  }
  if (j.object !== object) fail(`event ${i}: object ${JSON.stringify(j.object)}, expected ${object}`);
});
console.log(`${events.length} events`);
