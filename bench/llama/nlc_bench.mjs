// Times llama.cpp through node-llama-cpp on one GGUF file, the way llama-bench and
// `cairn bench infer` time it: prompt processing of PP random tokens from an empty
// sequence (one call, batch 512), and decoding timed from the first generated token to
// the last (TG tokens, greedy), so the prompt and the first sampling are not counted.
// Each measurement runs REPEATS times after one untimed warm-up; medians are printed
// as one JSON line.
//
// usage: node nlc_bench.mjs MODEL.gguf THREADS [PP=512] [TG=128] [REPEATS=3]
// NODE_PATH or the working directory must reach node-llama-cpp (run.sh arranges it).
import { createRequire } from "node:module";
import path from "node:path";

const [modelPath, threadsArg, ppArg = "512", tgArg = "128", repeatsArg = "3"] = process.argv.slice(2);
if (!modelPath || !threadsArg) {
  console.error("usage: node nlc_bench.mjs MODEL.gguf THREADS [PP] [TG] [REPEATS]");
  process.exit(2);
}
const threads = Number(threadsArg), pp = Number(ppArg), tg = Number(tgArg), repeats = Number(repeatsArg);

// Resolve node-llama-cpp from NLC_DIR (its node_modules parent) when given.
const require = createRequire(path.join(process.env.NLC_DIR ?? process.cwd(), "package.json"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? 0 : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

// A fixed-seed generator (SplitMix64), so every run sees the same tokens.
let state = 0x9e3779b97f4a7c15n;
const next = () => {
  state = (state + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  return z ^ (z >> 31n);
};

const llama = await getLlama({ gpu: false, build: "never", maxThreads: 0, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const embd = model.fileInfo.fullTensorInfo?.find((t) => t.name === "token_embd.weight");
const vocab = Number(embd?.dimensions[1] ?? 1000);
const randomTokens = (n) => Array.from({ length: n }, () => Number(next() % BigInt(vocab)));

const context = await model.createContext({
  contextSize: Math.max(pp, tg + 1, 256),
  batchSize: 512,
  threads,
  sequences: 1,
});
const sequence = context.getSequence();
const prompt = randomTokens(pp);
const start = randomTokens(1);

async function timePrompt() {
  await sequence.clearHistory();
  const t0 = process.hrtime.bigint();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  return pp / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function timeDecode(n) {
  await sequence.clearHistory();
  let first = 0n, last = 0n, count = 0;
  for await (const token of sequence.evaluate(start, { temperature: 0 })) {
    void token;
    last = process.hrtime.bigint();
    if (count === 0) first = last;
    if (++count >= n) break;
  }
  // count tokens were produced; count - 1 decode steps separate the first from the last.
  if (count < n) throw new Error(`decoding stopped after ${count} of ${n} tokens`);
  return (count - 1) / (Number(last - first) / 1e9);
}

if (pp > 0) await timePrompt();
if (tg > 0) await timeDecode(Math.min(tg, 8));
const ppRuns = [], tgRuns = [];
for (let r = 0; r < repeats; ++r) {
  if (pp > 0) ppRuns.push(await timePrompt());
  if (tg > 0) tgRuns.push(await timeDecode(tg));
}
console.log(
  JSON.stringify({
    engine: "node-llama-cpp",
    model: modelPath,
    threads,
    n_prompt: pp,
    n_decode: tg,
    pp_tokens_per_s: median(ppRuns),
    pp_samples: ppRuns,
    tg_tokens_per_s: median(tgRuns),
    tg_samples: tgRuns,
  }),
);
await context.dispose();
await model.dispose();
await llama.dispose();
