#!/usr/bin/python3
"""Turns one run's JSON files (benchmarks/run.sh) into the markdown tables of BENCHMARKS.md, targets included."""
import glob, json, os, sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def mobilenet_v2_macs(size=224):
    """Multiply-adds of MobileNetV2 1.0 up to the 1280-channel 1x1 conv (the feature vector), from its layer table."""
    h = size // 2
    macs = h * h * 32 * 3 * 3 * 3  # stem: 3x3 stride-2 conv, 3 -> 32
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            if t != 1:
                macs += h * h * cin * hidden  # expand 1x1
            h_out = h // stride
            macs += h_out * h_out * hidden * 9  # depthwise 3x3
            macs += h_out * h_out * hidden * c  # project 1x1
            h, cin = h_out, c
    macs += h * h * cin * 1280  # last 1x1 conv, 320 -> 1280 at 7x7
    return macs


lines = []
machine = load("machine.json") or {}
lines.append(f"Run: mode {machine.get('mode')}, {machine.get('date')}, commit {machine.get('commit')}, "
             f"{machine.get('nproc')} cores, {machine.get('cpu')} ({machine.get('vector')}), load at start {machine.get('loadAtStart')}, "
             f".NET SDK {machine.get('dotnet')}, Node {machine.get('node')}")
lines.append("")

# --- compute bound ---
macs = mobilenet_v2_macs()
gflop = 2 * macs / 1e9
measured = {t: (load(f"peak-flops-{t}.json") or {}).get("gflops") for t in (1, 2)}
# Datasheet bound: threads x 2 FMA units (Xeon Scalable) x vector lanes x 2 flops x clock. The VM hides the model and the
# turbo clock, so the clock is /proc/cpuinfo's (the TSC rate, the nominal clock).
lanes = {"avx512": 16, "avx2": 8}.get(machine.get("vector"), 4)
mhz = float(machine.get("mhz") or 0)
peak = {t: t * 2 * lanes * 2 * mhz / 1000 for t in (1, 2)}
lines.append(f"MobileNetV2 224: {macs / 1e6:.0f} M multiply-adds = {gflop:.3f} GFLOP per image (layer table, see summarise.py).")
lines.append(f"Datasheet float32 peak: threads x 2 FMA units x {lanes} lanes x 2 flops x {mhz:.0f} MHz = {peak[1]:.0f} GFLOP/s on 1 core, "
             f"{peak[2]:.0f} on 2 -> compute bound {peak[1] / gflop:.0f} images/s on 1 core, {peak[2] / gflop:.0f} on 2.")
lines.append(f"Measured FMA loop (peak-flops, 12 independent 512-bit FMA chains): 1 thread {measured[1]} GFLOP/s, 2 threads {measured[2]} GFLOP/s "
             f"(= {measured[2] / gflop if measured[2] else float('nan'):.0f} images/s; ONNX Runtime exceeds it, so it understates the peak).")
lines.append("")

# --- embedding ---
rows = []
mirror_rows = []
seen = set()
for path in glob.glob(os.path.join(out, "bdn", "results", "*-report-full*.json")):
    with open(path) as f:
        report = json.load(f)
    for b in report["Benchmarks"]:
        if b["FullName"] in seen or not b.get("Statistics"):
            continue
        seen.add(b["FullName"])
        params = dict(p.split("=") for p in b["Parameters"].split("&"))
        if b["Type"] == "MirrorInvariantEmbeddingBenchmarks":
            mirror_rows.append((params["Threads"], params["Mirror"], b["Statistics"]["Median"] / 1e6))
        elif b["Type"] == "EmbeddingBenchmarks":
            batch = int(params["Batch"])
            rows.append((params["Size"], params.get("Model", "float32"), batch, int(params["Threads"]), batch / (b["Statistics"]["Mean"] / 1e9)))
tfjs = {"1024x768": load("tfjs-1024.json"), "4000x3000": load("tfjs-4000.json")}
lines.append("| images | batch | threads | .NET images/s | TF.js anchor images/s | ratio | % of datasheet bound |")
lines.append("| --- | --- | --- | --- | --- | --- | --- |")
for size, model, batch, threads, ips in sorted(rows):
    anchor = tfjs.get(size)
    a = anchor["imagesPerSecond"] if anchor else None
    bound = (peak[threads] / gflop) if peak.get(threads) else None
    lines.append(f"| {size}{'' if model == 'float32' else f' ({model} model)'} | {batch} | {threads} | {ips:.1f} | {a if a else 'n/a'} | {f'{ips / a:.1f}x' if a else 'n/a'} | "
                 f"{f'{100 * ips / bound:.0f}%' if bound else 'n/a'} |")
lines.append("")
for threads, mirror, ms in sorted(mirror_rows):
    lines.append(f"- one 1024x768 query image, {threads} thread(s), mirror-invariant {mirror}: median {ms:.1f} ms")
lines.append("")

# --- index ---
# float32 scores every row; exact (the default) only those its int8 bounds cannot rule out, with the same answers.
lines.append("| vectors | threads | engine | queries/s | p50 ms | resident MiB (delta) | raw float32 MiB | float32 rows scored/query | recall@10 | vs FAISS flat |")
lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for n in (10000, 100000):
    for threads in (1, 2):
        faiss = load(f"index-faiss-{n}-{threads}.json")
        for name in ("float32", "exact", "int8", "faiss"):
            r = load(f"index-{name}-{n}-{threads}.json")
            if not r:
                continue
            ratio = f"{r['qps'] / faiss['qps']:.2f}x" if faiss else "n/a"
            recall = r.get("recallAt10") if name != "faiss" else r.get("agreementWithDotnetExactAt10")
            scored = {"float32": r.get("count"), "exact": r.get("rowsScoredPerQuery")}.get(name)
            lines.append(f"| {n} | {threads} | {r['engine']} | {r['qps']} | {r['p50Ms']} | {r['rssDeltaMiB']} | {r['rawFloat32MiB']} | "
                         f"{scored if scored is not None else '-'} | {recall if recall is not None else '-'} | {ratio} |")
lines.append("")

# --- latency, memory, cold start, backfill ---
latency = load("latency.json")
if latency:
    lines.append(f"Callable ({load('seed.json')['count'] if load('seed.json') else '?'} vectors, bruteForceConfig: exact, int8-filtered local index): cold start {latency['coldStartMs']} ms "
                 f"(process start to first answered request), peak RSS {latency['serverPeakRssMiB']} MiB")
    for p in latency["phases"]:
        lines.append(f"- {p['clients']} clients: {p['requests']} requests, p50 {p['p50Ms']} ms, p90 {p['p90Ms']} ms, p99 {p['p99Ms']} ms, "
                     f"{p['throughputPerSecond']} requests/s, {p['errors']} errors, RSS {p['rssStartMiB']} -> {p['rssEndMiB']} MiB")
latency = load("latency-treeah.json")
if latency:
    lines.append(f"Callable, ALGORITHM_CONFIG=treeAhConfig (int8 local index): cold start {latency['coldStartMs']} ms, peak RSS {latency['serverPeakRssMiB']} MiB")
    for p in latency["phases"]:
        lines.append(f"- {p['clients']} clients: {p['requests']} requests, p50 {p['p50Ms']} ms, p90 {p['p90Ms']} ms, p99 {p['p99Ms']} ms, "
                     f"{p['throughputPerSecond']} requests/s, {p['errors']} errors")
for variant in ("emulator", "emulator-r2r"):
    runs = [load(f"coldstart-{variant}-{i}.json") for i in (1, 2, 3)]
    runs = [r for r in runs if r]
    if runs:
        lines.append(f"Cold start {variant}: " + ", ".join(f"{r['coldStartMs']} ms" for r in runs)
                     + f"; peak RSS " + ", ".join(f"{r['serverPeakRssMiB']} MiB" for r in runs))
for gc in ("server", "workstation"):
    m = load(f"memory-{gc}.json")
    if m:
        lines.append(f"Memory, {gc} GC, model loaded, 24-image index: peak RSS {m['serverPeakRssMiB']} MiB, cold start {m['coldStartMs']} ms "
                     f"(fresh install: backfill included), p50 at 1 client {m['phases'][0]['p50Ms']} ms")
for folder, label in (("", "unlimited"), ("capped/", "GC heap capped at 768 MiB (a 1 GiB function)")):
    for name in ("jpeg-1024", "jpeg-12mp", "png-49mp", "truncated-jpeg-20mb", "mixed"):
        m = load(f"{folder}memory-class-{name}.json")
        if m:
            lines.append(f"Memory per input class, {label}, {name}: peak RSS {m['serverPeakRssMiB']} MiB; "
                         + "; ".join(f"{p['clients']} clients {p['requests']} answered {p['errors']} errors p99 {p['p99Ms']} ms" for p in m["phases"]))
backfill = load("backfill.json")
if backfill:
    lines.append(f"Backfill: install to first answer {backfill['coldStartMs'] / 1000:.1f} s, peak RSS {backfill['serverPeakRssMiB']} MiB")
lines.append("")

# --- quality ---
for name, title in (("quality.json", "curated set"), ("quality-with-flat.json", "with the flat pictures kept")):
    quality = load(name)
    if not quality:
        continue
    lines.append("")
    lines.append(f"Copy detection, {title}: {quality['indexed']} indexed images, {quality['queries']} queries")
    transforms = [t["transform"] for t in quality["variants"][0]["transforms"]]
    lines.append("| variant | recall@1 | recall@10 | mAP | " + " | ".join(f"{t} r@1" for t in transforms) + " |")
    lines.append("| --- " * (4 + len(transforms)) + "|")
    for v in quality["variants"]:
        o = v["overall"]
        lines.append(f"| {v['variant']} | {o['recallAt1']} | {o['recallAt10']} | {o['mAP']} | "
                     + " | ".join(str(t["recallAt1"]) for t in v["transforms"]) + " |")
print("\n".join(lines))
