"""Figures from a benchmark result (bench/results/latest.json) as Markdown.

One place turns measurements into words, for bench/results/latest.md and for the README's
generated blocks (scripts/readme_figures.py), so the two can never disagree. Standard
library only: rendering the README and docs/ needs no TensorFlow and no browser.
"""

NATIVE_SIZES = ("256", "512", "1024")


def _steady(row: dict | None) -> float | None:
    """A row's steady ms, or None when it has none or its result was wrong."""
    if not row or row.get("wrong") or row.get("steady_ms") is None:
        return None
    return row["steady_ms"]


def native_ms(results: dict, threads: str, size: str) -> float | None:
    """The engine's native step (ms) with `threads` at `size`, if measured and correct."""
    row = results["native"].get(threads, {}).get("steps", {}).get(size)
    if not row or not (row.get("cosine_to_reference") or 0) >= 0.999:
        return None
    return row["steady_ms"]


def best_native_ms(results: dict, size: str) -> float | None:
    """The faster of the 1- and 2-thread native steps at `size`."""
    times = [t for t in (native_ms(results, "1", size), native_ms(results, "2", size)) if t]
    return min(times) if times else None


def ratios(results: dict) -> dict:
    """The ratios the docs quote: old/new native, wasm against 1-thread native,
    wasm-threads against 2-thread native, every browser row against the best native."""
    out = {"old_vs_new_native": None, "wasm_vs_native_1_thread": {},
           "wasm_threads_vs_native_2_threads": {}, "vs_best_native": {}}
    old = results["native"].get("2", {}).get("old_vs_new")
    if old and min(old["old"]["cosine_to_reference"], old["new"]["cosine_to_reference"]) >= 0.999:
        out["old_vs_new_native"] = {"size": old["size"], "ratio": old["speedup"],
                                    "old_ms": old["old"]["steady_ms"],
                                    "new_ms": old["new"]["steady_ms"]}
    for backend, row in results["browser"].items():
        for size, cell in row.get("sizes", {}).items():
            ms = _steady(cell)
            if ms is None:
                continue
            best = best_native_ms(results, size)
            if best:
                out["vs_best_native"].setdefault(backend, {})[size] = ms / best
            key, threads = {"wasm": ("wasm_vs_native_1_thread", "1"),
                            "wasm-threads": ("wasm_threads_vs_native_2_threads", "2")}.get(
                backend, (None, None))
            native = native_ms(results, threads, size) if key else None
            if native:
                out[key][size] = ms / native
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} s"


def _check(cell: dict) -> str:
    """A timing's correctness check, as the tables say it."""
    if cell.get("wrong"):
        return f"**wrong result**: {cell['wrong']}"
    return f"cosine {cell['cosine']:.6f}" if cell.get("cosine") is not None else "not checked"


def _row(*cells: str) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def machine_line(results: dict) -> str:
    """The machine, the run's mode and the load on the shared CPU."""
    m = results["machine"]
    kind = {True: "software", False: "hardware"}
    gpus = "; ".join(f"{g['backend']}: {g['device']} ({kind[bool(g['software'])]})"
                     for g in m.get("gpu", [])) or "none detected"
    flag = "" if results["mode"] == "default" else " --" + results["mode"]
    return (f"{m['date']}, `python -m bench{flag}`"
            f" ({results.get('minutes', 0):.0f} min): {m['cpu']}, {m['cores']} cores (shared with "
            f"other work: load average {m.get('load_at_start', 0):.1f} at the start, "
            f"{m.get('load_at_end', 0):.1f} at the end), {m['memory']}; {m['chromium']} headless. "
            f"GPU as the page detected it: {gpus}.")


def hardware_gpu(results: dict) -> bool:
    """Whether any GPU backend ran on a hardware (not software) adapter."""
    return any(not g["software"] for g in results["machine"].get("gpu", []))


def native_table(results: dict) -> list:
    """ms per step of the engine over native TensorFlow, 1 and 2 threads, and the old step."""
    sizes = [s for s in NATIVE_SIZES if s in results["native"]["2"]["steps"]]
    lines = ["| native TensorFlow step | " + " | ".join(f"{s} px" for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for threads, label in (("2", "2 threads"), ("1", "1 thread")):
        steps = results["native"].get(threads, {}).get("steps", {})
        cells = []
        for s in sizes:
            row = steps.get(s)
            cells.append("-" if not row else
                         f"{row['steady_ms']:.0f} ms (cosine {row['cosine_to_reference']:.6f})")
        lines.append(f"| engine step, {label} | " + " | ".join(cells) + " |")
    old = results["native"]["2"].get("old_vs_new")
    if old:
        cells = ["-"] * len(sizes)
        if str(old["size"]) in sizes:
            cells[sizes.index(str(old["size"]))] = (
                f"{old['old']['steady_ms']:.0f} ms (cosine {old['old']['cosine_to_reference']:.6f})"
                f"; new, interleaved: {old['new']['steady_ms']:.0f} ms; "
                f"**{old['speedup']:.1f}x**")
        lines.append("| pre-issue-11 step, 2 threads | " + " | ".join(cells) + " |")
    return lines


def browser_table(results: dict) -> list:
    """Every tfjs backend: device, first and steady step, correctness, ratio to native."""
    r = ratios(results)
    lines = ["| tfjs backend | device (detected) | size | first step | steady step | "
             "gradient vs native | steady / native |", "|---|---|---|---|---|---|---|"]
    for backend, row in results["browser"].items():
        if "error" in row:
            lines.append(f"| {backend} | did not start: {row['error']} | | | | | |")
            continue
        proof = row.get("threads")
        if proof and not proof["threaded_build_ran"]:
            lines.append(f"| {backend} | **threads did not run**: {proof['why_not']} "
                         f"| | no time: it would be the wasm row again | | | |")
            continue
        device = row.get("device", "")
        if proof:
            device += (f"; {proof['threads']} threads, loaded {', '.join(proof['wasm_files'])},"
                       f" crossOriginIsolated")
        if row.get("software"):
            device += " (software)"
        for size, cell in row["sizes"].items():
            if cell.get("wrong"):
                lines.append(_row(backend, device, f"{size} px", _check(cell), "not a speed",
                                  "", ""))
                continue
            if backend == "wasm":
                ratio, vs = r["wasm_vs_native_1_thread"].get(size), "1 thread"
            elif backend == "wasm-threads":
                ratio, vs = r["wasm_threads_vs_native_2_threads"].get(size), "2 threads"
            else:
                ratio, vs = r["vs_best_native"].get(backend, {}).get(size), "best"
            lines.append(_row(backend, device, f"{size} px", _ms(cell["first_ms"]),
                              _ms(cell["steady_ms"]), _check(cell),
                              "-" if ratio is None else f"{ratio:.1f}x ({vs})"))
            device = ""  # said once per backend
    return lines


def before_after_lines(results: dict) -> list:
    """The steady GPU step along tfjs's own path and the page's, side by side (issue 18)."""
    lines = ["| backend | path | size | steady step | gradient vs native | speedup |",
             "|---|---|---|---|---|---|"]
    for backend, row in results["browser"].items():
        ba = row.get("before_after") if isinstance(row, dict) else None
        if not ba:
            continue
        for name, path in ba["paths"].items():
            if path.get("wrong"):
                lines.append(_row(backend, name, f"{ba['size']} px", _check(path), "", ""))
                continue
            check = _check(path)
            speedup = ""
            if name == "dreamframe" and ba.get("speedup"):
                speedup = f"**{ba['speedup']:.2f}x**"
            elif name != "tfjs" and path.get("steady_ms") and ba["paths"]["tfjs"].get("steady_ms"):
                speedup = f"{ba['paths']['tfjs']['steady_ms'] / path['steady_ms']:.2f}x"
            lines.append(f"| {backend} | {name} | {ba['size']} px | {_ms(path['steady_ms'])} | "
                         f"{check} | {speedup} |")
    return lines if len(lines) > 2 else []


def webgl_lines(results: dict) -> list:
    """WebGL over whole dreams: programs, compile time, first step per octave, GPU memory."""
    w = results.get("webgl")
    if not w or "octaves" not in w.get("shape_uniforms_off", {}):
        return ["WebGL did not run: no figures."] if w is not None else []
    off = w["shape_uniforms_off"]
    lines = [f"WebGL on {off['device']}, a default-style dream of a 128x96 photo "
             f"(`{off['options']}`), texture pool capped at "
             f"{off['texture_pool_cap_bytes'] / 2 ** 20:.0f} MiB:", "",
             "| octave | first step | other steps (median) | programs so far | "
             "compile time so far | GPU bytes allocated |", "|---|---|---|---|---|---|"]
    for o in off["octaves"]:
        lines.append(f"| {o['octave'] + 1} | {_ms(o['first_step_ms'])} | "
                     f"{_ms(o['other_steps_ms'])} | {o['programs_after']} | "
                     f"{_s(o['compile_ms_after'])} | {o['gpu_bytes_after'] / 1e6:.1f} MB |")
    runs = off["dreams"]
    mem = [d["gpu_bytes_after"] / 1e6 for d in runs]
    seconds = ", ".join(f"{d['seconds']:.1f}" for d in runs)
    lines += ["", f"Over {len(runs)} dreams in a row: GPU bytes allocated after each "
              f"{', '.join(f'{m:.1f}' for m in mem)} MB; programs added per dream "
              f"{', '.join(str(d['programs_added']) for d in runs)}; wall time per dream "
              f"{seconds} s."]
    on = w.get("shape_uniforms_on")
    if on and "octaves" in on:
        lines += ["", "With `WEBGL_USE_SHAPES_UNIFORMS` on, as the page runs (its fresh page "
                  "first prepared a default dream of this size by itself, as a visitor's "
                  f"does): {on['dreams'][0]['programs_added']} programs for the first dream "
                  f"against {runs[0]['programs_added']} with it off, compile time "
                  f"{_s(on['dreams'][0]['compile_ms'])} against {_s(runs[0]['compile_ms'])}."]
    sized = w.get("sizes")
    if sized and "runs" in sized:
        dreams = ", then ".join(f"{r['size']} {r['programs_added']}" for r in sized["runs"])
        lines += ["", f"Programs compiled per dream of the cat sample (`{sized['options']}`), "
                  f"one after the other in one page ({sized['programs_when_ready']} when the "
                  f"page was ready): {dreams}; the new size added "
                  f"{100 * sized['new_size_share']:.1f}% to the programs of the first dream."]
    return lines


def loop_lines(results: dict) -> list:
    """The page's Python-driven step against the same step in plain JS (wasm)."""
    lines = ["| size | Python ms | JS ms | ratio |", "|---|---|---|---|"]
    for size, f in results.get("loop", {}).items():
        lines.append(f"| {size} px | {f['python_ms']:.0f} | {f['js_ms']:.0f} | "
                     f"{f['ratio']:.2f} |")
    return lines


def startup_lines(results: dict) -> list:
    """Cold start of the built page for both interpreters."""
    runs = next(iter(results["startup"].values()))["runs"]
    lines = [f"Measured by `bench/startup.py` (cold cache, localhost, `?sample=chelsea&autostart`,"
             f" median of {runs}; {results['machine']['date']}, {results['machine']['cores']} "
             f"cores):", "",
             "| interpreter | interpreter ready | model ready | first dream frame | "
             "bytes before it |", "|---|---|---|---|---|"]
    label = {"micropython": "MicroPython 1.27 (shipped)",
             "pyodide": "Pyodide 314.0.7 (`?interpreter=pyodide`)"}
    for name, s in results["startup"].items():
        lines.append(f"| {label.get(name, name)} | {s['interpreter'] / 1000:.2f} s | "
                     f"{s['model'] / 1000:.2f} s | {s['first'] / 1000:.2f} s | "
                     f"{s['bytes'] / 1e6:.1f} MB |")
    mp, py = results["startup"].get("micropython"), results["startup"].get("pyodide")
    if mp and py:
        lines += ["", f"MicroPython shows the first frame {py['first'] / mp['first']:.1f}x "
                  f"sooner and downloads {py['bytes'] / mp['bytes']:.1f}x less."]
    return lines


def dream_lines(results: dict) -> list:
    """Whole default dreams on wasm: wall time and memory."""
    lines = ["| image | wall time | steps | peak tfjs bytes | wasm heap at end |",
             "|---|---|---|---|---|"]
    for name, d in results.get("dreams", {}).items():
        if "error" in d:
            lines.append(f"| {name} | failed: {d['error']} | | | |")
            continue
        lines.append(f"| {name} ({d['sample'].split('/')[-1]}) | {d['seconds']:.1f} s | "
                     f"{d['steps']} | {d['peak_tensor_bytes'] / 1e6:.0f} MB | "
                     f"{d['wasm_heap_bytes'] / 1e6:.0f} MB |")
    return lines


def scaling_lines(results: dict) -> list:
    """Time per wasm step against pixel count."""
    wasm = results["browser"].get("wasm", {}).get("sizes", {})
    sizes = {s: _steady(c) for s, c in wasm.items()}
    sizes.update(results.get("scaling_ms") or {})
    lines = ["| side | megapixels | ms per step | ms per megapixel |", "|---|---|---|---|"]
    for size in sorted(sizes, key=int):
        if sizes[size] is None:
            continue
        mp = int(size) ** 2 / 1e6
        lines.append(f"| {size} | {mp:.2f} | {sizes[size]:.0f} | {sizes[size] / mp:.0f} |")
    return lines


def waits_lines(results: dict) -> list:
    """What a GPU visitor waits for, per backend, through the page (bench/waits.py)."""
    waits = results.get("waits")
    if not waits:
        return []
    lines = ["| backend | ready | default dream prepared | photo 192x128 prepared | first dream "
             "| same again | first / again | 160x224 prepared + dreamt | 12-frame zoom | "
             "programs: ready / prepared / after 1st / new size added (share) / zoom added |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for backend, w in waits.items():
        if "error" in w:
            lines.append(f"| {backend} | **did not run**: {w['error']} | | | | | | | | |")
            continue
        other = w["other_size"]
        after_first = w["programs_prepared"] + w["photo"]["programs_added"] + w[
            "first_dream"]["programs_added"]
        added = other["programs_added"] + other["dream"]["programs_added"]
        lines.append(
            f"| {backend} | {w['ready_seconds']:.1f} s | {w['default_prepared_seconds']:.1f} s "
            f"| {w['photo']['prepare_seconds']:.1f} s | {w['first_dream']['seconds']:.1f} s "
            f"(moved {w['first_dream']['moved']:.1f}/255) | {w['dream_again']['seconds']:.1f} s "
            f"| **{w['first_over_again']:.2f}x** | {other['prepare_seconds']:.1f} s + "
            f"{other['dream']['seconds']:.1f} s | {w['zoom']['seconds']:.0f} s | "
            f"{w['programs_at_ready']} / {w['programs_prepared']} / {after_first} / {added} "
            f"({100 * w['new_size_share']:.1f}%) / {w['zoom']['programs_added']} |")
    return lines


def goals_lines(results: dict) -> list:
    """Each goal against this run's figure: met, not met, or not measured."""
    g = results["goals"]
    r = ratios(results)
    mp = results.get("startup", {}).get("micropython")
    loop = [f["ratio"] for f in results.get("loop", {}).values()]
    wasm512 = r["wasm_vs_native_1_thread"].get("512")
    threads512 = r["wasm_threads_vs_native_2_threads"].get("512")
    old = r["old_vs_new_native"]

    def verdict(value: float | None, goal: float, higher: bool = False) -> str:
        if value is None:
            return "not measured"
        return "met" if (value >= goal if higher else value <= goal) else "**not met**"

    lines = ["| goal | this run | |", "|---|---|---|"]
    if mp:
        first, mb = mp["first"] / 1000, mp["bytes"] / 1e6
        lines.append(f"| first dream frame within {g['first_frame_s']} s | {first:.2f} s | "
                     f"{verdict(first, g['first_frame_s'])} |")
        lines.append(f"| at most {g['first_frame_mb']:.0f} MB before it | {mb:.1f} MB"
                     f" | {verdict(mb, g['first_frame_mb'])} |")
    if loop:
        lines.append(f"| Python-driven loop within {g['python_js_ratio']}x of plain JS | "
                     f"{', '.join(f'{x:.2f}x' for x in loop)} | "
                     f"{verdict(max(loop), g['python_js_ratio'])} |")
    lines.append(f"| wasm step at 512 px within {g['wasm_vs_native_512']:g}x of 1-thread "
                 f"native | {'-' if wasm512 is None else f'{wasm512:.1f}x'} | "
                 f"{verdict(wasm512, g['wasm_vs_native_512'])} |")
    lines.append(f"| wasm-threads step at 512 px within {g['wasm_vs_native_512']:g}x of "
                 f"2-thread native | {'-' if threads512 is None else f'{threads512:.1f}x'} | "
                 f"{verdict(threads512, g['wasm_vs_native_512'])} |")
    old_ratio, old_size = (old["ratio"], old["size"]) if old else (None, None)
    lines.append(f"| native step at least {g['old_vs_new_native']}x faster than before issue 11"
                 f" | {'-' if old is None else f'{old_ratio:.1f}x at {old_size} px'} | "
                 f"{verdict(old and old['ratio'], g['old_vs_new_native'], higher=True)} |")
    waits = results.get("waits", {})
    for backend, goal in (("webgl", g.get("webgl_first_over_again")),
                          ("webgpu", g.get("webgpu_first_over_again"))):
        w = waits.get(backend, {})
        if goal is not None:
            value = w.get("first_over_again")
            lines.append(f"| {backend}: the first dream after ready within {goal}x of the same "
                         f"dream again | {'-' if value is None else f'{value:.2f}x'} | "
                         f"{verdict(value, goal)} |")
    if "new_size_share" in g:
        share = waits.get("webgl", {}).get("new_size_share")
        lines.append(f"| webgl: a photo of another size adds at most "
                     f"{100 * g['new_size_share']:.0f}% programs | "
                     f"{'-' if share is None else f'{100 * share:.1f}%'} | "
                     f"{verdict(share, g['new_size_share'])} |")
    if "gpu_step_speedup" in g:
        ba = results["browser"].get("webgl", {}).get("before_after") or {}
        speedup = ba.get("speedup")
        lines.append(f"| webgl: steady step at {ba.get('size', 256)} px at least "
                     f"{g['gpu_step_speedup']}x faster than tfjs's own path | "
                     f"{'-' if speedup is None else f'{speedup:.2f}x'} | "
                     f"{verdict(speedup, g['gpu_step_speedup'], higher=True)} |")
    huge = results.get("dreams", {}).get("4096x4096")
    if huge is not None:
        seconds = huge.get("seconds", 0)
        lines.append(f"| a 4096x4096 dream completes on wasm | "
                     f"{huge.get('error') or f'{seconds:.0f} s'} | "
                     f"{'**not met**' if 'error' in huge else 'met'} |")
    return lines


def profile_lines(results: dict) -> list:
    """Where the wasm step's time goes at 512 px, against 1-thread native's whole step."""
    profile = results["browser"].get("wasm", {}).get("profile_512")
    native = native_ms(results, "1", "512")
    if not profile or not native:
        return []
    conv = profile["convolutions_ms"]
    top = ", ".join(f"{k} {v:.0f}" for k, v in profile["top_ms"].items())
    return [f"- step {profile['step_ms']:.0f} ms (kernels timed one by one): convolutions "
            f"{conv:.0f} ms, **{conv / native:.1f}x one-thread native's whole step** "
            f"({native:.0f} ms); other kernels {profile['other_kernels_ms']:.0f} ms; outside "
            f"kernels (Python, scheduling) {profile['outside_kernels_ms']:.0f} ms",
            f"- largest kernels (ms): {top}"]


def facts_lines(results: dict) -> dict:
    """The engine figures docs/engine.md quotes in its prose, as short phrases."""
    facts = results["native"]["2"].get("facts", {})
    out = {}
    tiles = facts.get("tiles")
    if tiles:
        c = tiles["cosine_by_margin"]
        out["tiles"] = (f"without context, a {tiles['image']} px image in {tiles['tile']} px tiles"
                        f" has a gradient with cosine {c['0']:.3f} to the untiled one; 32 px of "
                        f"context gives {c['32']:.3f}, 64 px {c['64']:.4f} (the default), 96 px "
                        f"{c['96']:.5f}")
    dream = facts.get("chelsea_dream")
    if dream:
        first = dream["loss_by_octave"][0]
        rises = all(b > a for a, b in dream["loss_by_octave"])
        out["chelsea_change"] = f"about {dream['mean_abs_change_255']:.0f}/255 on average"
        out["chelsea_loss"] = (f"{'rises' if rises else 'does NOT rise'} in every octave of the "
                               f"default dream (chelsea: {first[0]:.2f} -> {first[1]:.2f} in "
                               f"octave 1)")
    drift = facts.get("drift")
    if drift:
        c = drift["cosine_by_step"]
        out["drift"] = (f"falls to cosine {c[-1]:.2f} after {len(c)} steps "
                        f"(cosines {', '.join(f'{x:.3f}' for x in c)})")
    return out


def markdown(results: dict) -> str:
    """The whole report (bench/results/latest.md)."""
    lines = [f"# Benchmark, {results['machine']['date']}", "", machine_line(results), "",
             "Timings are medians after a first step reported apart (compilation); every "
             "timing comes with a check of its gradient from the same run.", "",
             "## Native TensorFlow (`dreamengine.render.gradient_step` over `TfBackend`)", "",
             *native_table(results), "",
             "## tfjs backends in headless Chromium (the page's own step)", "",
             *browser_table(results), ""]
    before_after = before_after_lines(results)
    if before_after:
        lines += ["## GPU step before and after issue 18 (alternating in one page)", "",
                  *before_after, ""]
    if results.get("waits"):
        lines += ["## What a GPU visitor waits for (the page, as a visitor uses it)", "",
                  *waits_lines(results), ""]
    if results.get("webgl"):
        lines += ["## WebGL in practice", "", *webgl_lines(results), ""]
    lines += ["## Goals", "", *goals_lines(results), ""]
    profile = profile_lines(results)
    if profile:
        lines += ["## Where a 512 px wasm step goes", "", *profile, ""]
    lines += ["## Python-driven loop (PyScript) against the same loop in plain JS, wasm", "",
              *loop_lines(results), "", "## Cold start of the built page", "",
              *startup_lines(results), "", "## Whole default dreams on wasm", "",
              *dream_lines(results), "", "## Time per step against pixel count (wasm)", "",
              *scaling_lines(results), ""]
    facts = facts_lines(results)
    if facts:
        lines += ["## Engine figures (native)", ""] + [f"- {k}: {v}" for k, v in facts.items()]
        lines.append("")
    return "\n".join(lines)
