#!/usr/bin/env python3
"""tools/bench/peer_torch.py -- seqlite's copy of the PyTorch speed peer (../shared/bench/peer_torch.py),
extended with the attention model, so `seqlite bench --attention A --encoder bi` has a peer of the same model.

Model: embedding -> L-layer LSTM encoder; its final (h, c) of every layer seeds an
L-layer LSTM decoder -> Linear(H, V_tgt) -> softmax cross-entropy (pad ignored).
Teacher forcing, Adam lr 1e-3, clip_grad_norm_ 5.0; no dropout.
--bidirectional: each encoder layer a forward and a backward LSTM of H/2 (nn.LSTM(bidirectional=True)),
their final states side by side per layer seed the decoder (as seqlite's --encoder bi).
--attention dot|general|mlp: Luong global attention over the top encoder states with input feeding, written
as seqlite computes it (nn/attention.h): the source-side keys K = W_a hs (general) or W_1 hs (mlp, width H)
once per batch; per step scores h_t.K (dot: h_t.hs) or v.tanh(K + W_2 h_t), softmax over the source,
context c_t, h~_t = tanh(W_c [c_t; h_t]) (no bias), which feeds the output layer and, with the next target
embedding, the next step ([emb | h~] into a stack of LSTMCells). Without --attention: the plain model above,
the peer's own (identical to ../shared/bench/peer_torch.py).

Modes (each prints one JSON line):
  train   time --steps training steps (after --warmup) on seeded random ids
  greedy  translate --sentences random sources in batches of --batch; always
  beam    --tgt-len output steps (no early stop), beam search of width --beam
Use the Debian interpreter: /usr/bin/python3 peer_torch.py train --threads 1
"""
import argparse, json, os, resource, time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("mode", choices=["train", "greedy", "beam"])
for name, default in [("src-vocab", 8000), ("tgt-vocab", 8000), ("emb", 256), ("hidden", 512),
                      ("layers", 2), ("batch", 64), ("src-len", 24), ("tgt-len", 24), ("threads", 1),
                      ("steps", 10), ("warmup", 2), ("sentences", 64), ("beam", 5), ("seed", 1)]:
    p.add_argument("--" + name, type=int, default=None, help=f"default {default}")
p.add_argument("--attention", choices=["none", "dot", "general", "mlp"], default="none")
p.add_argument("--bidirectional", action="store_true")
p.add_argument("--config", choices=["tiny", "base"], default="base",
               help="canonical sizes; explicit flags override them")
CONFIGS = {"tiny": dict(src_vocab=2000, tgt_vocab=2000, emb=128, hidden=256, layers=1, batch=32, src_len=16, tgt_len=16),
           "base": dict(src_vocab=8000, tgt_vocab=8000, emb=256, hidden=512, layers=2, batch=64, src_len=24, tgt_len=24)}
DEFAULTS = dict(threads=1, steps=10, warmup=2, sentences=64, beam=5, seed=1)
a = p.parse_args()
for k, v in {**DEFAULTS, **CONFIGS[a.config]}.items():
    if getattr(a, k) is None:
        setattr(a, k, v)

# torch's CPU GEMMs go to OpenBLAS (pthreads), which torch.set_num_threads does not
# control: fix its thread count before torch loads it.  With 2 cores, OpenMP's default
# spin-waiting fights OpenBLAS's own threads (2 threads ran 2-3x slower than 1): sleep instead.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(a.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import ctypes
import torch
import torch.nn as nn

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
try:
    blas = ctypes.CDLL("libopenblas.so.0")          # the copy torch already loaded
    blas.openblas_set_num_threads(a.threads)
    blas.openblas_get_corename.restype = ctypes.c_char_p
    blas_core = blas.openblas_get_corename().decode()
except OSError:
    blas_core = "unknown"

PAD, BOS, EOS, FIRST = 0, 1, 2, 4                  # ids 0..3 are specials (3 = unk)


class Seq2Seq(nn.Module):
    def __init__(s, sv, tv, e, h, layers):
        super().__init__()
        s.src_emb, s.tgt_emb = nn.Embedding(sv, e, padding_idx=PAD), nn.Embedding(tv, e, padding_idx=PAD)
        s.enc = nn.LSTM(e, h // 2, layers, bidirectional=True) if a.bidirectional else nn.LSTM(e, h, layers)
        s.att = a.attention != "none"
        if s.att:
            s.cells = nn.ModuleList([nn.LSTMCell(e + h if l == 0 else h, h) for l in range(layers)])
            s.Wk = nn.Linear(h, h, bias=False) if a.attention in ("general", "mlp") else None
            if a.attention == "mlp":
                s.W2, s.v = nn.Linear(h, h, bias=False), nn.Linear(h, 1, bias=False)
            s.Wc = nn.Linear(2 * h, h, bias=False)
        else:
            s.dec = nn.LSTM(e, h, layers)           # time-major [T, B, .]
        s.out = nn.Linear(h, tv)

    def encode(s, src):                            # -> memory [S, B, H], final (h, c): [L, B, H] each
        mem, (h, c) = s.enc(s.src_emb(src))
        if a.bidirectional:                        # [2L, B, H/2] -> [L, B, H]: both directions side by side
            h, c = torch.cat([h[0::2], h[1::2]], 2), torch.cat([c[0::2], c[1::2]], 2)
        return mem, (h, c)

    def keys(s, mem):                              # once per batch: [S, B, H]
        return s.Wk(mem) if s.Wk is not None else mem

    def attend(s, h, mem, keys):                   # h [B, H] -> h~ [B, H]
        if a.attention == "mlp":
            score = s.v(torch.tanh(keys + s.W2(h)[None]))[..., 0]            # [S, B]
        else:
            score = torch.einsum("bh,sbh->sb", h, keys)
        ctx = torch.einsum("sb,sbh->bh", torch.softmax(score, 0), mem)
        return torch.tanh(s.Wc(torch.cat([ctx, h], 1)))

    def step(s, x, state, mem, keys):              # attention model: one step from embeddings x [B, E]
        hs, cs, feed = state
        inp, nh, nc = torch.cat([x, feed], 1), [], []
        for l, cell in enumerate(s.cells):
            h, c = cell(inp, (hs[l], cs[l]))
            nh.append(h), nc.append(c)
            inp = h
        ht = s.attend(h, mem, keys)
        return ht, (torch.stack(nh), torch.stack(nc), ht)

    def forward(s, src, tgt_in):                   # teacher forcing -> logits [T, B, V]
        mem, hc = s.encode(src)
        if not s.att:
            return s.out(s.dec(s.tgt_emb(tgt_in), hc)[0])
        keys, emb = s.keys(mem), s.tgt_emb(tgt_in)
        state, outs = (hc[0], hc[1], mem.new_zeros(src.size(1), mem.size(2))), []
        for t in range(tgt_in.size(0)):
            ht, state = s.step(emb[t], state, mem, keys)
            outs.append(ht)
        return s.out(torch.stack(outs))

    # decoding: a state is (h, c) (plain) or (h, c, h~) with the batch's memory and keys alongside
    def start(s, src, K=1):
        mem, (h, c) = s.encode(src)
        h, c = h.repeat_interleave(K, 1), c.repeat_interleave(K, 1)
        if not s.att:
            return (h, c), None
        mem = mem.repeat_interleave(K, 1)
        return (h, c, mem.new_zeros(h.size(1), h.size(2))), (mem, s.keys(mem))

    def advance(s, tok, state, ctx):               # -> output state [B, H], new state
        if not s.att:
            y, state = s.dec(s.tgt_emb(tok)[None], state)
            return y[0], state
        return s.step(s.tgt_emb(tok), state, *ctx)

    def select(s, state, ctx, sel):                # beam: keep rows sel of the state (memory is per row too)
        if not s.att:
            return (state[0][:, sel], state[1][:, sel]), ctx
        return (state[0][:, sel], state[1][:, sel], state[2][sel]), ctx


def rand_ids(g, v, t, b):
    return torch.randint(FIRST, v, (t, b), generator=g)


def cpu_snapshot():  # machine-wide busy CPU seconds, this process's CPU seconds, wall clock
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    t = os.times()
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK"), t.user + t.system, time.perf_counter()


def finish(s0, extra):
    s1 = cpu_snapshot()
    out = dict(mode=a.mode, threads=a.threads, blas=blas_core, attention=a.attention,
               encoder="bi" if a.bidirectional else "uni", src_vocab=a.src_vocab, tgt_vocab=a.tgt_vocab,
               emb=a.emb, hidden=a.hidden, layers=a.layers, batch=a.batch, src_len=a.src_len, tgt_len=a.tgt_len)
    out.update(extra)
    out["sec"] = round(s1[2] - s0[2], 3)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    # average number of cores kept busy by *other* processes during the timed part
    out["others_cores"] = round(max(0.0, (s1[0] - s0[0]) - (s1[1] - s0[1])) / (s1[2] - s0[2]), 2)
    print(json.dumps(out))


def train(m, g):
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    batches = []
    for _ in range(4):                             # target y_1..y_{T-1} EOS, input BOS y_1..y_{T-1}
        y = rand_ids(g, a.tgt_vocab, a.tgt_len - 1, a.batch)
        tin = torch.cat([torch.full((1, a.batch), BOS), y])
        tout = torch.cat([y, torch.full((1, a.batch), EOS)])
        batches.append((rand_ids(g, a.src_vocab, a.src_len, a.batch), tin, tout))

    def step(i):
        src, tin, tout = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(m(src, tin).view(-1, a.tgt_vocab), tout.view(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
        return loss.item()

    for i in range(a.warmup):
        step(i)
    s0 = cpu_snapshot()
    losses = [step(a.warmup + i) for i in range(a.steps)]
    dt = time.perf_counter() - s0[2]
    finish(s0, dict(steps=a.steps, steps_per_s=round(a.steps / dt, 4),
                    tgt_tokens_per_s=round(a.steps * a.batch * a.tgt_len / dt, 1),
                    tokens_per_s=round(a.steps * a.batch * (a.src_len + a.tgt_len) / dt, 1),
                    loss_first=round(losses[0], 4), loss_last=round(losses[-1], 4)))


def greedy(m, src):
    state, ctx = m.start(src)
    tok, out = torch.full((src.size(1),), BOS), []
    done = torch.zeros(src.size(1), dtype=torch.bool)
    for _ in range(a.tgt_len):                     # argmax(logits) == argmax(softmax)
        y, state = m.advance(tok, state, ctx)
        tok = m.out(y).argmax(-1).masked_fill_(done, PAD)       # PAD after EOS
        done |= tok == EOS
        out.append(tok)
    return torch.stack(out, 1)


def beam(m, src):
    """Batched beam search: all B*K hypotheses advance in one LSTM/Linear call per step."""
    B, K, V = src.size(1), a.beam, a.tgt_vocab
    state, ctx = m.start(src, K)                   # [L, B*K, H]
    tok = torch.full((B * K,), BOS)
    score = torch.full((B, K), float("-inf"))
    score[:, 0] = 0.0                               # start from a single live hypothesis
    done = torch.zeros(B * K, dtype=torch.bool)
    ended = torch.full((V,), float("-inf"))
    ended[PAD] = 0.0                                # a finished hypothesis only extends by PAD, at no cost
    base, toks, backs = torch.arange(B)[:, None] * K, [], []
    for _ in range(a.tgt_len):
        y, state = m.advance(tok, state, ctx)
        logp = torch.log_softmax(m.out(y), -1)
        if done.any():
            logp = torch.where(done[:, None], ended, logp)
        score, idx = (score[:, :, None] + logp.view(B, K, V)).view(B, K * V).topk(K, 1)
        back, tok = idx // V, (idx % V).view(-1)
        sel = (base + back).view(-1)
        state, ctx = m.select(state, ctx, sel)     # a row's memory is its sentence's: sel stays in-sentence
        done = done[sel] | (tok == EOS)
        toks.append(tok.view(B, K))
        backs.append(back)
    k, out = torch.zeros(B, 1, dtype=torch.long), []   # topk is sorted: column 0 is the best
    for t in reversed(range(a.tgt_len)):
        out.append(toks[t].gather(1, k))
        k = backs[t].gather(1, k)
    return torch.cat(out[::-1], 1)


def translate(m, g):
    decode = greedy if a.mode == "greedy" else beam
    n = -(-a.sentences // a.batch)
    srcs = [rand_ids(g, a.src_vocab, a.src_len, a.batch) for _ in range(n)]
    with torch.inference_mode():
        for i in range(a.warmup):
            decode(m, srcs[i % n])
        s0 = cpu_snapshot()
        hyps = torch.cat([decode(m, s) for s in srcs])[: a.sentences]
    dt = time.perf_counter() - s0[2]
    finish(s0, dict(beam=a.beam if a.mode == "beam" else 1, sentences=a.sentences,
                    sentences_per_s=round(a.sentences / dt, 2),
                    tgt_tokens_per_s=round(a.sentences * a.tgt_len / dt, 1), checksum=int(hyps.sum())))


if __name__ == "__main__":
    g = torch.Generator().manual_seed(a.seed)
    model = Seq2Seq(a.src_vocab, a.tgt_vocab, a.emb, a.hidden, a.layers)
    (train if a.mode == "train" else translate)(model, g)
