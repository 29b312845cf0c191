"""
The PyTorch side of `npm run bench -- --torch`: times the upstream modules on the shapes of our bench rows (random
weights: timing only), median of N timed runs after one warm-up, torch.set_num_threads(T). One JSON line per row on
stdout (`TORCH_ROW {...}`), progress on stderr.

  /usr/bin/python3 bench/torch/stages.py [--stages a,b,...] [--runs 3] [--threads 2] [--song-runs 1]

Sources (exported by bench/torch/fetch_upstream.sh into bench/.upstream/, never committed):
  dit.block            MuCodec models/attention.py BasicTransformerBlock (diffusers v0.27.2 Attention, FeedForward)
  muq.features         MuQ modules/features.py MelSTFT (torchaudio MelSpectrogram, is_db) + the mean/std normalisation
  muq.conv_subsampling MuQ modules/conv.py Conv2dSubsampling(1, 512, 1024, [2, 2], n_bands 128)
  muq.conformer_layer  RESTATEMENT in plain torch of transformers' Wav2Vec2ConformerEncoderLayer (rotary): the
                       `transformers` package is not installed (not in Debian 12) and MuQ's flash_conformer.py imports it
  muq.hidden6          MelSTFT + Conv2dSubsampling + 6 restated conformer layers, one 40.96 s window
  rvq.quantize         MuCodec libs/rvq/descript_quantize3.py ResidualVectorQuantize (1024, 1 × 16384, dim 32)
  encode.song_3min     generate.py sound2code's work on a 3-minute stereo song: 5 windows in batches of 3, each
                       window peak-normalised, mono, torchaudio Resample(48000, 24000), MuQ to hidden 6, RVQ
  vae.decode           MuCodec tools/get_melvaehifigan48k.py Decoder (AudioLDM-48k ddconfig) after post_quant_conv
  hifigan.generate     MuCodec tools/get_melvaehifigan48k.py Generator_old(get_vocoder_config_48k())
  raw.matmul           torch.matmul 4096×1584 @ 1584×6336 (the DiT FFN shape): the best plain op beside the rows
The MuQ package's __init__ imports fairseq, so conv.py and features.py are loaded by file path.
"""
import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
UP = os.path.join(HERE, "..", ".upstream")
MUQ_DIR = os.path.join(UP, "MuCodec", "muq_dev", "muq_fairseq", "models", "muq")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# modules the upstream sources import that no shim stands in for, and the Debian package of each (bench/README.md)
NEEDED = {"torch": "python3-torch", "torchaudio": "python3-torchaudio", "numpy": "python3-numpy",
          "scipy": "python3-scipy", "numba": "python3-numba", "soundfile": "python3-soundfile",
          "joblib": "python3-joblib", "PIL": "python3-pil", "packaging": "python3-packaging",
          "filelock": "python3-filelock", "regex": "python3-regex", "tqdm": "python3-tqdm"}


def setup_paths():
    missing = [d for d in ("MuCodec", "diffusers", "einops", "librosa") if not os.path.isdir(os.path.join(UP, d))]
    if missing:
        raise SystemExit(f"bench/torch: {', '.join(missing)} not in {UP}: run bench/torch/fetch_upstream.sh first")
    absent = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if absent:
        raise SystemExit(f"bench/torch: {sys.executable} lacks the module(s) {', '.join(absent)}: "
                         f"apt-get install {' '.join(NEEDED[m] for m in absent)}")
    sys.path[:0] = [os.path.join(UP, "diffusers", "src"), os.path.join(UP, "einops"), os.path.join(UP, "librosa"),
                    os.path.join(UP, "MuCodec"), HERE]
    import shims
    return shims.install()


def load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def openblas_core():
    import ctypes
    import glob
    for lib in sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libopenblas*.so*")):
        try:
            l = ctypes.CDLL(lib)
            l.openblas_get_corename.restype = ctypes.c_char_p
            return l.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return None


def timed(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


# ---------------------------------------------------------------------------------------------------------------
# plain-torch restatement of transformers' Wav2Vec2ConformerEncoderLayer (rotary self-attention), eval mode

def conformer_layer(torch, d=1024, heads=16, ff=4096, k=31):
    nn = torch.nn

    class FeedForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.intermediate_dense = nn.Linear(d, ff)
            self.output_dense = nn.Linear(ff, d)

        def forward(self, x):
            return self.output_dense(nn.functional.silu(self.intermediate_dense(x)))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.ffn1_layer_norm = nn.LayerNorm(d)
            self.ffn1 = FeedForward()
            self.self_attn_layer_norm = nn.LayerNorm(d)
            self.linear_q, self.linear_k, self.linear_v, self.linear_out = (nn.Linear(d, d) for _ in range(4))
            self.conv_layer_norm = nn.LayerNorm(d)
            self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1, bias=False)
            self.depthwise_conv = nn.Conv1d(d, d, k, padding=(k - 1) // 2, groups=d, bias=False)
            self.batch_norm = nn.BatchNorm1d(d)
            self.pointwise_conv2 = nn.Conv1d(d, d, 1, bias=False)
            self.ffn2_layer_norm = nn.LayerNorm(d)
            self.ffn2 = FeedForward()
            self.final_layer_norm = nn.LayerNorm(d)

        def attn(self, x, cos, sin):
            b, t, _ = x.shape
            hd = d // heads
            # rotary on the hidden states before the q/k projections, as Wav2Vec2ConformerSelfAttention does
            h = x.view(b, t, heads, hd).transpose(0, 1)
            h1, h2 = h[..., : hd // 2], h[..., hd // 2:]
            qk = (h * cos) + (torch.cat((-h2, h1), dim=-1) * sin)
            qk = qk.transpose(0, 1).reshape(b, t, d)
            q = self.linear_q(qk).view(b, t, heads, hd).transpose(1, 2)
            kk = self.linear_k(qk).view(b, t, heads, hd).transpose(1, 2)
            v = self.linear_v(x).view(b, t, heads, hd).transpose(1, 2)
            s = torch.matmul(q, kk.transpose(-2, -1)) / math.sqrt(hd)
            p = torch.softmax(s, dim=-1)
            o = torch.matmul(p, v).transpose(1, 2).reshape(b, t, d)
            return self.linear_out(o)

        def conv(self, x):
            h = self.conv_layer_norm(x).transpose(1, 2)
            h = nn.functional.glu(self.pointwise_conv1(h), dim=1)
            h = nn.functional.silu(self.batch_norm(self.depthwise_conv(h)))
            return self.pointwise_conv2(h).transpose(1, 2)

        def forward(self, x, cos, sin):
            x = x + 0.5 * self.ffn1(self.ffn1_layer_norm(x))
            x = x + self.attn(self.self_attn_layer_norm(x), cos, sin)
            x = x + self.conv(x)
            x = x + 0.5 * self.ffn2(self.ffn2_layer_norm(x))
            return self.final_layer_norm(x)

    return Layer().eval()


def rotary(torch, t, hd=64, base=10000):
    inv = 1.0 / (base ** (torch.arange(0, hd, 2).float() / hd))
    f = torch.einsum("i,j->ij", torch.arange(t).float(), inv)
    emb = torch.cat((f, f), dim=-1)
    return emb.cos()[:, None, None, :], emb.sin()[:, None, None, :]


class MuQ:
    """MelSTFT → normalise → Conv2dSubsampling → 6 conformer layers (hidden state 6), MuQ's encoder order"""

    def __init__(self, torch):
        self.torch = torch
        feats = load_file("muq_features", os.path.join(MUQ_DIR, "modules", "features.py"))
        conv = load_file("muq_conv", os.path.join(MUQ_DIR, "modules", "conv.py"))
        self.mel = feats.MelSTFT(n_fft=2048, hop_length=240, is_db=True).eval()
        self.conv = conv.Conv2dSubsampling(1, 512, 1024, strides=[2, 2], n_bands=128).eval()
        self.layers = [conformer_layer(torch) for _ in range(6)]
        self.mean, self.std = 6.768444971712967, 18.417922652295623  # model/muq.py stat melspec_2048

    def features(self, wav24):
        return (self.mel(wav24) - self.mean) / self.std

    def hidden6(self, wav24):
        x = self.features(wav24)[..., : wav24.shape[-1] // 240]
        x = self.conv(x)
        cos, sin = rotary(self.torch, x.shape[1])
        for l in self.layers:
            x = l(x, cos, sin)
        return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", default="dit.block,muq.hidden6,encode.song_3min,vae.decode,hifigan.generate,raw.matmul")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--song-runs", type=int, default=1)
    a = ap.parse_args()
    shimmed = setup_paths()
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    core = openblas_core()
    base = {"torch_version": torch.__version__, "threads": torch.get_num_threads(),
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"), "openblas_core": core, "shimmed": shimmed}
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, OpenBLAS core {core} "
        f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}), shims: {', '.join(shimmed) or 'none'}")
    want = a.stages.split(",")

    def emit(stage, s, ts, source, shape, **extra):
        row = {"stage": stage, "torch_s": s, "runs": ts, "module": source, "shape": shape, "load": list(os.getloadavg()), **base, **extra}
        print("TORCH_ROW " + json.dumps(row), flush=True)
        log(f"torch {stage:<22} {s:8.3f} s  runs {' '.join(f'{t:.2f}' for t in ts)}  [{source}]")

    with torch.inference_mode():
        if "raw.matmul" in want:
            x, w = torch.randn(4096, 1584), torch.randn(1584, 6336)
            s, ts = timed(lambda: torch.matmul(x, w), a.runs)
            emit("raw.matmul", s, ts, "torch.matmul", "4096×1584 @ 1584×6336", gflops_per_s=2 * 4096 * 1584 * 6336 / 1e9 / s)
        if "dit.block" in want:
            from models.attention import BasicTransformerBlock
            d = 1584
            blk = BasicTransformerBlock(d, 22, 72, activation_fn="gelu-approximate", num_embeds_ada_norm=1000, attention_bias=True,
                                        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6).eval()
            x, t = torch.randn(1, 4096, d), torch.randn(1, 6 * d) * 0.1
            s, ts = timed(lambda: blk(x, timestep=t), a.runs)
            emit("dit.block", s, ts, "upstream: MuCodec models/attention.py BasicTransformerBlock", f"(1, 4096, {d})")
        muq = None
        if any(st in want for st in ("muq.hidden6", "muq.features", "muq.conv_subsampling", "muq.conformer_layer", "encode.song_3min")):
            muq = MuQ(torch)
            wav = torch.randn(1, 983040) * 0.2
        if "muq.hidden6" in want:
            # sub-stages timed inside the same runs, as our bench does
            parts = {"f": [], "c": [], "l": []}

            def window():
                t0 = time.perf_counter()
                x = muq.features(wav)[..., :4096]
                t1 = time.perf_counter()
                x = muq.conv(x)
                t2 = time.perf_counter()
                cos, sin = rotary(torch, x.shape[1])
                for l in muq.layers:
                    x = l(x, cos, sin)
                t3 = time.perf_counter()
                parts["f"].append(t1 - t0); parts["c"].append(t2 - t1); parts["l"].append((t3 - t2) / 6)
            s, ts = timed(window, a.runs)
            sub = {k: v[1:] for k, v in parts.items()}  # drop the warm-up
            emit("muq.features", statistics.median(sub["f"]), sub["f"], "upstream: MuQ modules/features.py MelSTFT", "(1, 983040) → (1, 128, 4096)")
            emit("muq.conv_subsampling", statistics.median(sub["c"]), sub["c"], "upstream: MuQ modules/conv.py Conv2dSubsampling", "(1, 128, 4096) → (1, 1024, 1024)")
            emit("muq.conformer_layer", statistics.median(sub["l"]), sub["l"], "restatement: Wav2Vec2ConformerEncoderLayer (transformers not installed)", "(1, 1024, 1024)")
            emit("muq.hidden6", s, ts, "upstream MelSTFT + Conv2dSubsampling, restated conformer layers", "window (1, 983280) → (1, 1024, 1024)")
        rvq = None
        if "encode.song_3min" in want or "rvq.quantize" in want:
            rq = load_file("rvq3", os.path.join(UP, "MuCodec", "libs", "rvq", "descript_quantize3.py"))
            rvq = rq.ResidualVectorQuantize(input_dim=1024, n_codebooks=1, codebook_size=16384, codebook_dim=32, quantizer_dropout=0.0).eval()
        if "rvq.quantize" in want:
            h = torch.randn(1, 1024, 1024)
            s, ts = timed(lambda: rvq(h), a.runs)
            emit("rvq.quantize", s, ts, "upstream: MuCodec libs/rvq/descript_quantize3.py", "(1, 1024, 1024) → (1, 1, 1024)")
        if "encode.song_3min" in want:
            import torchaudio
            rs = torchaudio.transforms.Resample(48000, 24000)
            song = torch.randn(2, 3 * 60 * 48000) * 0.2
            win = int(40.96 * 48000) + 480

            def encode_song():
                # generate.py sound2code: doubled and cut into 5 windows of 40.96 s + 480, batches of 3 (fetch_codes_batch)
                n = song.shape[-1] // int(40.96 * 48000) + 1
                audios = torch.cat([song, song], -1)[:, : n * win]
                inp = audios.reshape(2, -1, win).permute(1, 0, 2).reshape(-1, 2, win)
                codes = []
                for i in range(0, inp.shape[0], 3):
                    b = inp[i:i + 3]
                    pk = b.abs().amax(dim=-1, keepdim=True).clamp(min=0.9) / 0.9
                    mono = (b / pk).mean(dim=1)
                    hs = [muq.hidden6(rs(mono[j:j + 1])) for j in range(mono.shape[0])] if False else [muq.hidden6(rs(mono))]
                    for h in hs:
                        codes.append(rvq(h.transpose(1, 2))[1])
                return codes
            s, ts = timed(encode_song, a.song_runs, warmup=0)
            emit("encode.song_3min", s, ts, "upstream sound2code batching, MuQ as muq.hidden6, upstream RVQ", "(2, 8640000) @ 48 kHz → 4501 codes", note=f"real-time factor {s / 180:.2f}")
        if "vae.decode" in want:
            g = __import__("tools.get_melvaehifigan48k", fromlist=["Decoder"])
            dd = dict(double_z=True, mel_bins=256, z_channels=16, resolution=256, downsample_time=False, in_channels=1, out_ch=1,
                      ch=128, ch_mult=[1, 2, 4, 8], num_res_blocks=2, attn_resolutions=[], dropout=0.0)
            dec = g.Decoder(**dd).eval()
            pq = torch.nn.Conv2d(16, 16, 1).eval()
            z = torch.randn(1, 16, 128, 32)
            s, ts = timed(lambda: dec(pq(z)), a.runs)
            emit("vae.decode", s, ts, "upstream: MuCodec tools/get_melvaehifigan48k.py Decoder (+ post_quant_conv)", "(1,16,128,32) → (1,1,1024,256)")
        if "hifigan.generate" in want:
            g = __import__("tools.get_melvaehifigan48k", fromlist=["Generator_old"])
            voc = g.Generator_old(g.AttrDict(g.get_vocoder_config_48k())).eval()
            mel = torch.randn(1, 256, 100)
            s, ts = timed(lambda: voc(mel), a.runs)
            emit("hifigan.generate", s, ts, "upstream: MuCodec tools/get_melvaehifigan48k.py Generator_old", "(1,256,100) → (1,1,48016)")


if __name__ == "__main__":
    main()
