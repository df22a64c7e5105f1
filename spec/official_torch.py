"""Checks our .pt files with PyTorch, the way the official DiT-MoE code uses them.

Run by spec/officialCheckpoint.test.ts when a Python with torch is installed:
    python3 spec/official_torch.py CASE.json
CASE.json: {"config": {...}, "ours": "checkpoint.safetensors", "pt": "ck.pt",
            "bare_pt": "model.pt", "golden_pt": "golden/tiny.model.pt" (optional),
            "resaved": "where to write the checkpoint as train.py saves it"}

The module tree below has the official names and registration order of models.py
(DiT, DiTBlock, SparseMoeBlock, MoeMLP, MoEGate, FinalLayer, TimestepEmbedder, LabelEmbedder,
timm's PatchEmbed and Attention, FlashSelfMHAModified), parameters only: no forward is needed
to test names, shapes and the order of model.parameters(). Nothing is copied from the official
repository; the tree is checked against the golden state dict the official code wrote.

Exit status 0 and "ok" lines when every check passes; otherwise a message and status 1.
"""
import argparse
import collections
import json
import pickle
import struct
import sys
import zipfile

import torch
from torch import nn


class MoeMLP(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)


class MoEGate(nn.Module):
    def __init__(self, d, e):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(e, d))


class SparseMoeBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.experts = nn.ModuleList([MoeMLP(d, int(c["mlp_ratio"] * d)) for _ in range(c["num_experts"])])
        self.gate = MoEGate(d, c["num_experts"])
        if c["n_shared_experts"]:
            self.shared_experts = MoeMLP(d, d * c["n_shared_experts"])


class Attention(nn.Module):  # timm's: qkv, q_norm/k_norm (Identity), attn_drop, proj, proj_drop
    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(d, d)
        self.proj_drop = nn.Dropout(0.0)


class FlashSelfMHAModified(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.Wqkv = nn.Linear(d, 3 * d)
        self.q_norm = nn.LayerNorm(d // heads, eps=1e-6)
        self.k_norm = nn.LayerNorm(d // heads, eps=1e-6)
        self.inner_attn = nn.Identity()
        self.out_proj = nn.Linear(d, d)
        self.proj_drop = nn.Dropout(0.0)


class DiTBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = FlashSelfMHAModified(d, c["num_heads"]) if c["use_flash_attn"] else Attention(d)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.moe = SparseMoeBlock(c)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))


class FinalLayer(nn.Module):
    def __init__(self, d, p, out):
        super().__init__()
        self.norm_final = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(d, p * p * out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))


class PatchEmbed(nn.Module):  # timm's
    def __init__(self, cin, d, p):
        super().__init__()
        self.proj = nn.Conv2d(cin, d, kernel_size=p, stride=p)
        self.norm = nn.Identity()


class TimestepEmbedder(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(f, d), nn.SiLU(), nn.Linear(d, d))


class LabelEmbedder(nn.Module):
    def __init__(self, n, d, dropout):
        super().__init__()
        self.embedding_table = nn.Embedding(n + (1 if dropout > 0 else 0), d)


class DiT(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        out = c["in_channels"] * (2 if c["learn_sigma"] else 1)
        self.x_embedder = PatchEmbed(c["in_channels"], d, p)
        self.t_embedder = TimestepEmbedder(d, c["frequency_embedding_size"])
        self.y_embedder = LabelEmbedder(c["num_classes"], d, c["class_dropout_prob"])
        tokens = (c["input_size"] // p) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, d), requires_grad=False)
        self.blocks = nn.ModuleList([DiTBlock(c) for _ in range(c["depth"])])
        self.final_layer = FinalLayer(d, p, out)


def find_model(path):
    """The official download.find_model for a local file."""
    checkpoint = torch.load(path, map_location=lambda storage, loc: storage)
    if "ema" in checkpoint:
        checkpoint = checkpoint["ema"]
    elif "model" in checkpoint:
        checkpoint = checkpoint["model"]
    return checkpoint


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(v["shape"])
    return out, meta


class WeightsOnly(pickle.Unpickler):
    """The globals torch.load(weights_only=True) of PyTorch >= 2.6 allows for plain data."""
    ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"weights_only would refuse {module}.{name}")

    def persistent_load(self, pid):
        _, storage_type, _, _, numel = pid
        return storage_type(numel)  # an empty storage of the right type: the values do not matter here


def weights_only_ok(path):
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        WeightsOnly(__import__("io").BytesIO(z.read(pkl))).load()
    if int(torch.__version__.split(".")[0]) >= 2:  # 1.13's weights_only lacks BINFLOAT
        torch.load(path, weights_only=True)


def same(a, b):
    return a.shape == b.shape and torch.equal(a.view(torch.int32), b.contiguous().view(torch.int32))


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def main():
    case = json.load(open(sys.argv[1]))
    c = case["config"]
    model = DiT(c)
    names = [n for n, _ in model.named_parameters()]
    if names != list(model.state_dict().keys()):
        fail("model.parameters() order differs from state_dict() order")
    if case.get("golden_pt"):
        golden = torch.load(case["golden_pt"], map_location="cpu")
        if list(golden.keys()) != names:
            fail("the module tree does not give the official state_dict names and order")
        print("ok module tree = the official state_dict (names, order)")
    ours, meta = read_safetensors(case["ours"])
    step = int(meta["adam_step"])

    # find_model + strict load_state_dict, as train.py --resume and sample.py do
    sd = find_model(case["pt"])
    model.load_state_dict(sd, strict=True)
    ema_name = "ema." if any(k.startswith("ema.") for k in ours) else ""
    for n, p in model.named_parameters():
        if not same(p.data, ours[ema_name + n]):
            fail(f"find_model weights {n} differ from ours")
    print(f"ok find_model + load_state_dict(strict=True): {len(names)} tensors equal ours")

    ck = torch.load(case["pt"], map_location="cpu")
    if list(ck.keys()) != ["model", "ema", "opt", "args"]:
        fail(f"top-level keys {list(ck.keys())}")
    for n, p in ck["model"].items():
        if not same(p, ours[n]):
            fail(f"model[{n}] differs")
    weights_only_ok(case["pt"])
    print("ok the whole file passes weights_only's allowlist")

    # the optimiser, exactly as train.py makes it, then the saved state
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    opt.load_state_dict(ck["opt"])
    group = opt.param_groups[0]
    if (group["betas"], group["eps"]) != (tuple(ck["opt"]["param_groups"][0]["betas"]), ck["opt"]["param_groups"][0]["eps"]):
        fail("param group not loaded")
    for n, p in model.named_parameters():
        st = opt.state.get(p)
        if not p.requires_grad:
            if st:
                fail(f"{n} has no gradient but has optimiser state")
            continue
        if st is None:
            fail(f"no optimiser state for {n}")
        if float(st["step"]) != step:
            fail(f"{n}: step {float(st['step'])}, ours {step}")
        if not same(st["exp_avg"], ours["adam_m." + n]) or not same(st["exp_avg_sq"], ours["adam_v." + n]):
            fail(f"{n}: moments differ from ours (adam_m/adam_v)")
    print(f"ok torch.optim.AdamW.load_state_dict: every moment equals ours, step {step}")
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    opt.step()  # the loaded state is usable
    print("ok one AdamW step runs on the loaded state")

    # a plain weights .pt (convert model.safetensors model.pt): find_model + strict load
    if case.get("bare_pt"):
        bare = find_model(case["bare_pt"])
        DiT(c).load_state_dict(bare, strict=True)
        torch.load(case["bare_pt"], weights_only=True)
        carried = json.loads(bare._metadata["dit_moe"]["config"])
        if carried != c:
            fail("the configuration carried in _metadata differs")
        print("ok plain weights .pt: find_model + load_state_dict(strict=True), weights_only, config carried")

    # the same state saved the way train.py saves it (args an argparse.Namespace), for our reader
    if case.get("resaved"):
        model.load_state_dict(ck["model"])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
        opt.load_state_dict(ck["opt"])
        ns = argparse.Namespace(model=None, num_classes=c["num_classes"], num_experts=c["num_experts"],
                                num_experts_per_tok=c["num_experts_per_tok"], global_batch_size=ck["args"]["global_batch_size"],
                                global_seed=ck["args"]["global_seed"], rf=ck["args"]["rf"], results_dir="results", resume=None)
        torch.save({"model": model.state_dict(), "ema": ck["ema"], "opt": opt.state_dict(), "args": ns}, case["resaved"])
        print("ok re-saved as train.py does")


if __name__ == "__main__":
    main()
