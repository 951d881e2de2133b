"""The CPU-IMAC flow (seed 003) end to end: the CPU part in golden, the FC part on the RTL.

``python -m sim.cli run --backend rtl --preset imac_sot --model fashion_lenet_imac -n 20``
(``make sim PRESET=imac_sot``) comes here when the model is a CPU-IMAC network
(:mod:`golden.imac_net`). For each test image the CPU part (integer convolutions) runs in
golden and gives the binarized IMAC inputs; the RTL co-processor
(:class:`rtl.imac_serial.ImacSerialCoproc`, simulated in Icarus or Verilator) holds the
synapses, which the host programs once with the conductance codes of the chosen device
variation (``golden.imac.draw_conductances`` with ``--imac-sigma``, layer ``l`` drawn with seed
``--imac-seed + l``, as ``golden.imac.run_mlp`` draws them), then gets the input vector and a
start per image. After each run every layer's output levels are read from the co-processor and
compared with ``==`` against ``golden.imac.run_mlp``'s fixed-point levels; the first difference
stops the run and names the image, the layer, the index, both values and the seed.

It prints the accuracies (float, integer CPU part + ideal IMAC, + the variation), the agreement
(100 % or it stops), the co-processor's cycles per image, the synapse writes and the
simulator's speed, and writes a JSON report under ``build/reports/``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from golden import datasets, imac, imac_net
from rtl.outputs import check_file

from sim.util import UserError, write_json_atomic

__all__ = ["PRESET", "is_imac_model", "resolve_net", "make_coproc", "conductance_codes",
           "run_images", "cmd_run_imac", "ImacRunError"]

REPO = Path(__file__).resolve().parents[2]
#: The preset whose co-processor runs CPU-IMAC networks.
PRESET = "imac_sot"
BLOCK = "imac_serial"
JOB_FILE = "imac_job.json"
F = imac.FIXED


class ImacRunError(RuntimeError):
    """The simulation failed or a level differs from golden (the message says where)."""


def _net_path(spec: str) -> Path | None:
    p = Path(spec)
    if p.suffix == ".npz" or p.exists():
        return p
    cand = imac_net.MODELS_DIR / f"{spec}.npz"
    return cand if cand.is_file() else None


def is_imac_model(spec: str) -> bool:
    """Whether ``--model`` names a CPU-IMAC network file (bundled name or path)."""
    try:        # a name longer than the file system allows: OSError (ENAMETOOLONG) from stat
        p = _net_path(spec)
        if p is None or not p.is_file():
            return False
    except OSError:
        return False
    try:
        with np.load(p, allow_pickle=False) as z:
            return "imac_net_format" in z.files
    except (OSError, ValueError):
        return False


def resolve_net(spec: str):
    """``(net, path)`` of ``--model``; a ``UserError`` naming the problem."""
    p = _net_path(spec)
    if p is None:
        raise UserError(f"--model: no CPU-IMAC network {spec!r}")
    try:
        return imac_net.load_net(p), p.resolve()
    except imac_net.ImacNetFormatError as e:
        raise UserError(f"--model: {e}") from None


def make_coproc(net):
    """The RTL co-processor for ``net``'s IMAC layers, with golden's constants."""
    from rtl.imac_serial import ImacSerialCoproc
    return ImacSerialCoproc(**coproc_kwargs(net))


def coproc_kwargs(net) -> dict:
    """The arguments of ``rtl.imac_serial.ImacSerialCoproc`` for ``net``: everything the
    exported Verilog depends on besides the generator's source
    (``sim.flows.rtl_backend.export_key``)."""
    c = imac.CIRCUIT
    hpar = [imac.partitions(i, o, bias=True, layer=k)[0]
            for k, (i, o) in enumerate(net.fc_shapes)]
    return dict(shapes=net.fc_shapes, bias=[True] * net.fc_layers,
                mults=[imac.amp_multiplier(g) for g in net.gains],
                recips=[imac.mean_reciprocal(h) for h in hpar], x_max=F.x_max,
                rows=c.xbar_rows, x_bits=F.x_bits, g_bits=F.g_bits,
                i_bits=F.i_bits, shift=F.amp_shift, rail_bits=F.amp_frac_bits,
                mean_shift=F.mean_shift, lut=imac.sigmoid_lut().tolist(),
                out_bits=F.out_bits)


def conductance_codes(net, sigma: float, seed: int) -> list:
    """Per IMAC layer, the ``(g_pos, g_neg)`` codes ``[rows, n_out]`` (bias row last), drawn
    as ``golden.imac.run_mlp`` draws them."""
    out = []
    for k, (w, b) in enumerate(zip(net.fc_weights, net.fc_biases, strict=True)):
        rows = np.vstack([w, b[None, :]])
        gp, gn = imac.draw_conductances(rows, sigma=sigma, seed=seed + k)
        out.append((imac.quantize_conductances(gp), imac.quantize_conductances(gn)))
    return out


def _build(net, sim: str):
    """Export and build the co-processor of ``net`` in its test bench
    (``sim.flows.rtl_backend.build_block``: the clock generated inside the simulation, only the
    ports public on Verilator); one build directory per network and simulator, rebuilt only
    when the Verilog changed. Returns ``(runner, build_dir, toplevel)``."""
    import fcntl

    from sim.flows.rtl_backend import RtlRunError, build_block
    shapes = "-".join(str(s[0]) for s in net.fc_shapes) + f"-{net.fc_shapes[-1][1]}"
    gains = "_".join(f"{g:g}" for g in net.gains)
    build_dir = REPO / "build" / "sim" / BLOCK / f"{sim}-{shapes}-g{gains}"
    build_dir.mkdir(parents=True, exist_ok=True)
    # Two runs of one network share its build: the lock keeps a second build out while one is
    # in progress; each run then works in a directory of its own (sim.flows.rtl_backend.run_job).
    with open(build_dir.parent / f".{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            runner, top = build_block(make_coproc(net), block=BLOCK, sim=sim,
                                      build_dir=build_dir, always=False,
                                      key=repr(sorted(coproc_kwargs(net).items())))
        except RtlRunError as e:
            raise ImacRunError(f"the IMAC co-processor: {e}") from None
    return runner, build_dir, top


def run_images(*, net_path, sim: str, x, sigma: float, seed: int, quiet: bool = False) -> dict:
    """Run the images ``x`` (uint8 [N, C, H, W]) through the CPU part (golden) and the RTL
    co-processor; return the result dict (per image: the class, golden's class, the cycles).

    Raises
    ------
    ImacRunError
        The build or the simulation failed, or a level differs from golden.
    """
    from sim.flows.rtl_backend import check_sim, run_job
    check_sim(sim)
    net = imac_net.load_net(net_path)
    runner, build_dir, top = _build(net, sim)
    job = {"net_path": str(Path(net_path).resolve()), "sigma": sigma, "seed": seed,
           "quiet": quiet}
    return run_job(runner, sim=sim, build_dir=build_dir, toplevel=top,
                   test_module="sim.flows.imac_flow", testcase="imac_inference", job_file=JOB_FILE,
                   job=job, images=x, error=ImacRunError)


# -- the command line (sim.cli run dispatches here) ---------------------------------------------

def cmd_run_imac(args) -> int:
    """``sim.cli run`` for a CPU-IMAC network: golden, and with ``--backend rtl`` the RTL."""
    from sim.cli import _parse_n
    n = _parse_n(args.n)
    out = check_file("--report", args.report, example="report.json") if args.report else None
    sigma, seed = args.imac_sigma, args.imac_seed
    if not 0.0 <= sigma <= 0.25:
        raise UserError(f"--imac-sigma must be in [0, 0.25], not {sigma!r}")
    if seed < 0:
        raise UserError(f"--imac-seed must be >= 0, not {seed!r}")
    if args.backend == "rtl":
        from sim.flows.rtl_backend import check_sim
        check_sim(args.sim)
        if args.preset != PRESET:
            raise UserError(f"--preset: a CPU-IMAC network runs on the {PRESET} preset's IMAC "
                            f"co-processor, not {args.preset!r}")
    if getattr(args, "dataflow", None):
        raise UserError(f"--dataflow: a CPU-IMAC network has no adder layers to route, not "
                        f"{args.dataflow!r}")
    if args.dataset not in (None, "fashion_mnist"):
        raise UserError(f"--dataset: a CPU-IMAC network reads Fashion-MNIST, not "
                        f"{args.dataset!r}")
    net, path = resolve_net(args.model)
    if out is None:
        tag = "golden" if args.backend != "rtl" else f"rtl-{PRESET}-{args.sim}"
        out = check_file("--report", f"build/reports/{net.name}-{tag}.json")
    try:
        x, y = datasets.load_fashion_mnist("test")
    except datasets.DatasetError as e:
        raise UserError(str(e)) from None
    if n is not None:
        x, y = x[:n], y[:n]
    t0 = time.perf_counter()
    ideal = imac.classify(imac_net.infer(net, x)[-1])
    t_golden = time.perf_counter() - t0
    varied_levels = imac_net.infer(net, x, sigma=sigma, seed=seed)
    varied = imac.classify(varied_levels[-1])
    flt = imac.classify(imac_net.infer(net, x, cpu="float", impl="float")[-1])
    report = {
        "model": net.name, "dataset": "fashion_mnist", "split": "test", "images": int(len(y)),
        "backend": args.backend, "imac_sigma": sigma, "imac_seed": seed,
        "float_accuracy": float((flt == y).mean()),
        "int_ideal_imac_accuracy": float((ideal == y).mean()),
        "int_imac_variation_accuracy": float((varied == y).mean()),
        "golden_images_per_second": len(y) / t_golden,
    }
    print(f"CPU-IMAC network {net.name} on fashion_mnist test split, {len(y)} images, backend "
          f"{args.backend}")
    print(f"  float accuracy                        {100 * report['float_accuracy']:.2f} %")
    print(f"  integer CPU + ideal IMAC (fixed)      "
          f"{100 * report['int_ideal_imac_accuracy']:.2f} %")
    print(f"  integer CPU + IMAC, sigma {sigma:g} seed {seed}  "
          f"{100 * report['int_imac_variation_accuracy']:.2f} %")
    if args.backend == "rtl":
        try:
            res = run_images(net_path=path, sim=args.sim, x=x, sigma=sigma, seed=seed,
                             quiet=args.quiet)
        except ImacRunError as e:
            raise UserError(f"RTL run failed: {e}") from None
        images = res["images"]
        cls = np.array([im["class"] for im in images], dtype=np.int64)
        k = len(images)
        cycles = [im["cycles"] for im in images]
        rtl = {
            "preset": PRESET, "simulator": args.sim, "images": k,
            "levels_equal_to_golden": float(np.mean([im["agree"] for im in images])) if k
            else 0.0,
            "accuracy": float((cls == y[:k]).mean()) if k else 0.0,
            "cycles_per_image": float(np.mean(cycles)) if k else 0.0,
            "synapse_writes": res["synapse_writes"],
            "program_wall_seconds": res["program_seconds"],
            "simulated_cycles_per_second": float(np.sum(cycles)) / max(res["run_seconds"],
                                                                       1e-9),
            "images_per_second": k / max(res["run_seconds"], 1e-9),
            "wall_seconds": res["wall_seconds"],
        }
        report["rtl"] = rtl
        print(f"  RTL ({args.sim}, preset {PRESET}, co-processor {BLOCK}): {k} images, every "
              "IMAC layer's levels == golden's fixed point")
        print(f"    agreement with golden  {100 * rtl['levels_equal_to_golden']:.2f} % of images "
              "(all levels of all layers equal)")
        print(f"    end-to-end accuracy    {100 * rtl['accuracy']:.2f} % (CPU part in golden, "
              f"IMAC on the RTL, sigma {sigma:g} seed {seed})")
        print(f"    cycles per image       {rtl['cycles_per_image']:.0f} (serial model: one "
              "synapse per cycle)")
        print(f"    synapse writes         {rtl['synapse_writes']} (programmed once, "
              f"{rtl['program_wall_seconds']:.1f} s)")
        print(f"    simulator speed        {rtl['simulated_cycles_per_second']:.0f} cycles/s, "
              f"{rtl['images_per_second']:.2f} images/s")
    sys.stdout.flush()
    write_json_atomic(out, report, option="--report")
    print(f"report: {out}")
    return 0


# -- cocotb side ----------------------------------------------------------------------------------

try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a dependency; only guards odd installs
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def imac_inference(dut):
        """Program the synapses, run the job's images, compare every level with golden; write
        the result JSON (also on failure)."""
        from sim.flows.imac_host import ImacHost

        job = json.loads(Path(JOB_FILE).read_text())
        out = Path(job["result"])
        result = {"images": [], "error": None, "synapse_writes": 0}
        sigma, seed = float(job["sigma"]), int(job["seed"])
        try:
            net = imac_net.load_net(job["net_path"])
            x = np.load(job["images"])
            host = ImacHost(dut, net.fc_shapes, [True] * net.fc_layers, name=BLOCK)
            await host.reset()
            t0 = time.perf_counter()
            await host.program_layers(conductance_codes(net, sigma, seed))
            result["synapse_writes"] = host.writes
            result["program_seconds"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            for i, image in enumerate(x):
                signs = imac_net.cpu_int(net, image[None])
                want = imac.run_mlp(signs, net.fc_weights, net.gains, biases=net.fc_biases,
                                    sigma=sigma, seed=seed)
                cycles = await host.run(signs[0], poll=False)
                for k, w in enumerate(want):
                    levels = await host.read_levels(w.shape[1], layer=k)
                    for c, got in enumerate(levels):
                        if got != int(w[0, c]):
                            raise AssertionError(
                                f"IMAC layer {k} output {c}: rtl {got} != golden {int(w[0, c])}"
                                f" (fixed point, sigma {sigma:g}, seed {seed})")
                cls = host.class_index()
                if cls != int(imac.classify(want[-1])[0]):
                    raise AssertionError(f"class: rtl {cls} != golden "
                                         f"{int(imac.classify(want[-1])[0])} (seed {seed})")
                result["images"].append({"class": cls, "agree": True, "cycles": cycles})
                if not job["quiet"]:
                    rate = (i + 1) / (time.perf_counter() - t1)
                    print(f"\r  rtl: image {i + 1}/{len(x)}  {rate:.2f} images/s", end="",
                          file=sys.stderr, flush=True)
            result["run_seconds"] = time.perf_counter() - t1
            if not job["quiet"]:
                print(file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - reported to the parent, then re-raised
            result["error"] = f"image {len(result['images'])}: {type(e).__name__}: {e}"
            raise
        finally:
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(result))
            tmp.replace(out)
