/**
 * A tiny llama.cpp model made by the project: a GGUF (version 3) file written directly,
 * with a llama-architecture transformer of random weights (fixed seed, so the file is
 * the same every time) and a minimal SentencePiece-style vocabulary (control tokens,
 * the 256 byte tokens, a few word pieces) plus a chat template. The real llama-server
 * loads it and answers /completion and /v1/chat/completions with nonsense text.
 *
 *   writeTinyGguf(file, { name: 'tiny' })                 // ~300 KB
 *   writeTinyGguf(file, { name: 'slow', layers: 8, embd: 256, ff: 1024, vocab: 8000 })  // larger: loads for longer
 *
 * Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic "GGUF",
 * version, tensor count, metadata count, metadata (key, type, value), tensor infos
 * (name, dims, type, offset), padding to `general.alignment`, tensor data.
 * All tensors are F32 (type 0).
 */
import fs from 'node:fs';

export interface TinyModelOptions {
  /** general.name */
  name: string;
  /** Transformer blocks (default 1). */
  layers?: number;
  /** Embedding width (default 32). */
  embd?: number;
  /** Feed-forward width (default 64). */
  ff?: number;
  /** Attention heads (default 2); the key/value heads are the same. */
  heads?: number;
  /** Vocabulary size; at least the 3 control + 256 byte tokens + the word pieces (default: just those). */
  vocab?: number;
  /** llama.context_length (default 512). */
  ctx?: number;
  /** PRNG seed for the weights (default 1). */
  seed?: number;
}

const ALIGN = 32;
const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

/** A minimal chat template (jinja), so /v1/chat/completions has one without --chat-template. */
export const TINY_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

const WORDS = ['hello', 'world', 'zoopa', 'llama', 'the', 'a', 'is', 'of', 'and', 'to', 'in', 'it', 'on', 'model', 'tiny', 'server', 'stack', 'wake', 'sleep', 'socket'];

class Writer {
  private chunks: Buffer[] = [];
  size = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  pad(): void {
    const n = (ALIGN - (this.size % ALIGN)) % ALIGN;
    if (n) this.push(Buffer.alloc(n));
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

type Kv =
  | [string, 'u32', number]
  | [string, 'f32', number]
  | [string, 'bool', boolean]
  | [string, 'str', string]
  | [string, 'strs', string[]]
  | [string, 'f32s', number[]]
  | [string, 'i32s', number[]];

function writeKv(w: Writer, [key, kind, value]: Kv): void {
  w.str(key);
  switch (kind) {
    case 'u32':
      w.u32(T.U32);
      w.u32(value);
      break;
    case 'f32':
      w.u32(T.F32);
      w.f32(value);
      break;
    case 'bool':
      w.u32(T.BOOL);
      w.push(Buffer.from([value ? 1 : 0]));
      break;
    case 'str':
      w.u32(T.STRING);
      w.str(value);
      break;
    case 'strs':
      w.u32(T.ARRAY);
      w.u32(T.STRING);
      w.u64(value.length);
      for (const s of value) w.str(s);
      break;
    case 'f32s':
      w.u32(T.ARRAY);
      w.u32(T.F32);
      w.u64(value.length);
      for (const v of value) w.f32(v);
      break;
    case 'i32s':
      w.u32(T.ARRAY);
      w.u32(T.I32);
      w.u64(value.length);
      for (const v of value) w.i32(v);
      break;
  }
}

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The vocabulary: <unk> <s> </s>, <0x00>..<0xFF>, word pieces, then filler pieces up to `size`. */
function vocabulary(size: number | undefined): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3]; // unknown, control, control
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // byte
  }
  for (const word of WORDS) {
    tokens.push(`\u2581${word}`);
    types.push(1); // normal
  }
  for (let i = 0; tokens.length < (size ?? 0); i++) {
    tokens.push(`\u2581w${i}`);
    types.push(1);
  }
  const scores = tokens.map((_, i) => (types[i] === 1 ? -i : 0));
  return { tokens, scores, types };
}

/** The model file's bytes. */
export function tinyGguf(opts: TinyModelOptions): Buffer {
  const layers = opts.layers ?? 1;
  const embd = opts.embd ?? 32;
  const ff = opts.ff ?? 64;
  const heads = opts.heads ?? 2;
  const vocab = vocabulary(opts.vocab);
  const nVocab = vocab.tokens.length;
  const rand = prng(opts.seed ?? 1);

  const tensors: Array<{ name: string; dims: number[]; fill: 'one' | 'rand' }> = [
    { name: 'token_embd.weight', dims: [embd, nVocab], fill: 'rand' },
    { name: 'output_norm.weight', dims: [embd], fill: 'one' },
    { name: 'output.weight', dims: [embd, nVocab], fill: 'rand' },
  ];
  for (let i = 0; i < layers; i++) {
    tensors.push(
      { name: `blk.${i}.attn_norm.weight`, dims: [embd], fill: 'one' },
      { name: `blk.${i}.attn_q.weight`, dims: [embd, embd], fill: 'rand' },
      { name: `blk.${i}.attn_k.weight`, dims: [embd, embd], fill: 'rand' },
      { name: `blk.${i}.attn_v.weight`, dims: [embd, embd], fill: 'rand' },
      { name: `blk.${i}.attn_output.weight`, dims: [embd, embd], fill: 'rand' },
      { name: `blk.${i}.ffn_norm.weight`, dims: [embd], fill: 'one' },
      { name: `blk.${i}.ffn_gate.weight`, dims: [embd, ff], fill: 'rand' },
      { name: `blk.${i}.ffn_down.weight`, dims: [ff, embd], fill: 'rand' },
      { name: `blk.${i}.ffn_up.weight`, dims: [embd, ff], fill: 'rand' },
    );
  }

  const kvs: Kv[] = [
    ['general.architecture', 'str', 'llama'],
    ['general.name', 'str', opts.name],
    ['general.alignment', 'u32', ALIGN],
    ['general.file_type', 'u32', 0], // all F32
    ['llama.context_length', 'u32', opts.ctx ?? 512],
    ['llama.embedding_length', 'u32', embd],
    ['llama.block_count', 'u32', layers],
    ['llama.feed_forward_length', 'u32', ff],
    ['llama.attention.head_count', 'u32', heads],
    ['llama.attention.head_count_kv', 'u32', heads],
    ['llama.attention.layer_norm_rms_epsilon', 'f32', 1e-5],
    ['llama.rope.dimension_count', 'u32', embd / heads],
    ['llama.vocab_size', 'u32', nVocab],
    ['tokenizer.ggml.model', 'str', 'llama'],
    ['tokenizer.ggml.tokens', 'strs', vocab.tokens],
    ['tokenizer.ggml.scores', 'f32s', vocab.scores],
    ['tokenizer.ggml.token_type', 'i32s', vocab.types],
    ['tokenizer.ggml.unknown_token_id', 'u32', 0],
    ['tokenizer.ggml.bos_token_id', 'u32', 1],
    ['tokenizer.ggml.eos_token_id', 'u32', 2],
    ['tokenizer.ggml.add_bos_token', 'bool', true],
    ['tokenizer.chat_template', 'str', TINY_CHAT_TEMPLATE],
  ];

  const w = new Writer();
  w.push(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const kv of kvs) writeKv(w, kv);
  let offset = 0;
  const sizes = tensors.map((t) => t.dims.reduce((a, b) => a * b, 1) * 4);
  tensors.forEach((t, i) => {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(0); // GGML_TYPE_F32
    w.u64(offset);
    offset += Math.ceil(sizes[i]! / ALIGN) * ALIGN;
  });
  w.pad();
  tensors.forEach((t, i) => {
    const n = sizes[i]! / 4;
    const data = new Float32Array(Math.ceil(sizes[i]! / ALIGN) * (ALIGN / 4));
    const scale = 1 / Math.sqrt(t.dims[0]!);
    for (let k = 0; k < n; k++) data[k] = t.fill === 'one' ? 1 : (rand() * 2 - 1) * scale;
    w.push(Buffer.from(data.buffer)); // little-endian on x86_64, as GGUF wants
  });
  return w.bytes();
}

/** Writes the model to `file` (atomically: a temporary name, then rename) and returns its size in bytes. */
export function writeTinyGguf(file: string, opts: TinyModelOptions, mode = 0o644): number {
  const bytes = tinyGguf(opts);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, bytes, { mode });
  fs.renameSync(tmp, file);
  return bytes.length;
}
