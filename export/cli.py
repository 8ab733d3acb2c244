"""`cpmdesk-export SOURCE OUT [options]`: a thin shell over export.exporter."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import metadata
from pathlib import Path

from export.draft_vocab import DEFAULT_DRAFT_VOCAB
from export.errors import ExportError
from export.log_file import setup_logging
from export.privacy import disable_telemetry
from export.settings import TERNARY_STORAGE, WEIGHT_FORMATS, Quantization

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="cpmdesk-export",
        description="Export a Hugging Face model (hub id, local folder or .gguf file) to a validated OpenVINO IR.")
    parser.add_argument("source", help="hub id (org/name), local Hugging Face folder, or .gguf file")
    parser.add_argument("out", type=Path,
                        help="output folder (created in an existing folder; must be empty unless --force)")
    parser.add_argument("--weight-format", choices=WEIGHT_FORMATS, default="int4", help="default: int4")
    parser.add_argument("--group-size", type=int, default=128, help="int4 group size (default 128; -1 per channel)")
    parser.add_argument("--ratio", type=float, default=1.0, help="share of layers in int4, the rest int8 (default 1.0)")
    parser.add_argument("--sym", action="store_true", help="symmetric quantization")
    parser.add_argument("--int4-head", action="store_true",
                        help="the LM head in int4 too (default int8; a tied embedding keeps an int8 copy)")
    parser.add_argument("--awq", action="store_true",
                        help="activation-aware weight quantization: data-free on the streaming backend (NNCF's rule "
                             "for up_proj -> down_proj), with calibration data through --backend optimum")
    parser.add_argument("--scale-estimation", action="store_true",
                        help="NNCF scale estimation (needs --dataset and --backend optimum)")
    parser.add_argument("--dataset", help="calibration data: 'auto' (samples from the model itself, offline) or a "
                                          "named dataset (needs the network)")
    parser.add_argument("--num-samples", type=int, help="number of calibration samples")
    parser.add_argument("--ternary", choices=TERNARY_STORAGE, default=Quantization().ternary,
                        help="weights trained ternary and shipped fake-quantized (BitCPM4, BitNet b1.58: every "
                             "value -s, 0 or +s) are found per tensor and stored without loss: int2 (default: 2 "
                             "bits a weight in the file, computed as int4 codes once loaded), int4 (4 bits in the "
                             "file too, loads faster), or off (quantized like any other weight); streaming backend "
                             "only")
    parser.add_argument("--backend", choices=("streaming", "optimum"), default="streaming",
                        help="streaming (default): torch-free, reads and compresses one layer at a time, memory "
                             "bounded by the compressed model; optimum: optimum-intel through PyTorch (needs "
                             "pip install 'cpmdesk[export]'), for data-aware compression and other architectures")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit) to download")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow models that ship their own Python code to run it")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    parser.add_argument("--task", choices=("text-generation", "embedding"), default="text-generation",
                        help="text-generation (chat models, default) or embedding (sentence encoders for documents)")
    parser.add_argument("--sparse-attention", nargs="?", const="", metavar="CONFIG",
                        help="InfLLM v2 sparse attention (on by default when the model's config has sparse_config; "
                             "the variant follows the model: MiniCPM4 or MiniCPM4.1); "
                             "CONFIG: JSON or a .json file overriding sparse_config keys, e.g. "
                             "'{\"variant\": \"minicpm4.1\", \"dense_len\": 4096}'")
    parser.add_argument("--no-sparse-attention", action="store_true", help="keep dense attention")
    parser.add_argument("--draft", metavar="DRAFT",
                        help="also export a draft model for assisted generation into OUT/draft: a smaller model "
                             "with the same tokenizer (hub id, folder or .gguf), or eagle3:PATH for an EAGLE3 head")
    parser.add_argument("--draft-weight-format", choices=WEIGHT_FORMATS, default="int4",
                        help="the draft's weight format (default: int4)")
    parser.add_argument("--draft-group-size", type=int, default=128, help="the draft's int4 group size (default 128)")
    parser.add_argument("--draft-asym", action="store_true",
                        help="asymmetric quantization for the draft (default symmetric: drafted tokens are ~10 %% "
                             "cheaper and accepted as often)")
    parser.add_argument("--draft-vocab", type=int, default=DEFAULT_DRAFT_VOCAB, metavar="N",
                        help="the draft ranks only the first N token ids (the most frequent in BPE vocabularies), "
                             f"which makes each drafted token cheaper; 0 keeps all (default {DEFAULT_DRAFT_VOCAB})")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code: 0, 2 for any failure (one `error:` line), 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    log_path = setup_logging("cpmdesk-export", terminal=False)
    log.info("cpmdesk-export %s", " ".join(sys.argv[1:] if argv is None else argv))
    disable_telemetry()
    if args.backend == "streaming" and args.task == "text-generation":
        keep_torch_out()
    problem = _check_options(args) or _check_out(args.out)
    if problem:
        log.error("refused: %s", problem)
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        _run(args)
    except ExportError as err:
        log.error("export failed: %s", err, exc_info=True)
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        log.warning("interrupted")
        print("error: interrupted; nothing was written to OUT", file=sys.stderr)
        return 130
    except Exception as err:  # a failure nothing above names: one line here, the traceback in the log file
        log.exception("export failed unexpectedly")
        first_line = (str(err).strip().splitlines() or [""])[0]
        details = f"the details are in {log_path}" if log_path else "run again with CPMDESK_DEBUG=1 for the details"
        print(f"error: the export failed unexpectedly ({type(err).__name__}: {first_line}); nothing was written to "
              f"OUT; {details}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace) -> None:
    """The export the options ask for; raises ExportError (or anything unexpected) on failure."""
    quant = Quantization(weight_format=args.weight_format, group_size=args.group_size, ratio=args.ratio, sym=args.sym,
                         awq=args.awq, scale_estimation=args.scale_estimation, dataset=args.dataset,
                         num_samples=args.num_samples, ternary=args.ternary, int4_head=args.int4_head)
    if args.task == "embedding":
        from export.embedding import run_embedding_export

        run_embedding_export(Path(args.source), args.out, quant, args.force, log=_progress)
        return
    from export.draft import DraftRequest
    from export.exporter import ExportRequest, run_export
    from export.sparse_attention import parse_sparse_option

    sparse = False if args.no_sparse_attention else parse_sparse_option(args.sparse_attention)
    draft = DraftRequest(args.draft, Quantization(weight_format=args.draft_weight_format,
                                                  group_size=args.draft_group_size, sym=not args.draft_asym),
                         vocab=args.draft_vocab or None) if args.draft else None
    run_export(ExportRequest(args.source, args.out, quant, args.trust_remote_code, args.force, args.revision,
                             sparse_attention=sparse, draft=draft, backend=args.backend), log=_progress)


def _progress(line: str) -> None:
    """A step of the export: on stdout (the app reads it) and in the log file."""
    print(line, flush=True)
    log.info("%s", line.strip())


def keep_torch_out() -> None:
    """Make `import torch` fail in this process unless it already happened: the streaming exporter never needs it,
    and libraries that import it when it is installed (NNCF's tensor backends, transformers) would spend seconds
    and hundreds of MB on it."""
    for name in ("torch", "torchvision", "optimum"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found" notice


def _check_options(args: argparse.Namespace) -> str | None:
    """The first option out of range, as a one-line error, before any model is read."""
    for flag, value in (("--group-size", args.group_size), ("--draft-group-size", args.draft_group_size)):
        if value != -1 and (value < 2 or value % 2):
            return f"{flag} {value}: use an even number of columns per group (e.g. 32, 64, 128) or -1 per channel"
    if not 0.0 < args.ratio <= 1.0:
        return f"--ratio {args.ratio}: the share of layers in int4 must be above 0 and at most 1 (e.g. 0.8)"
    if args.num_samples is not None and args.num_samples < 1:
        return f"--num-samples {args.num_samples}: use at least 1 calibration sample"
    if args.draft_vocab < 0:
        return f"--draft-vocab {args.draft_vocab}: use 0 (keep all) or a positive number of token ids"
    if (args.backend == "optimum" or args.task == "embedding") and not _installed("optimum-intel"):
        what = "--task embedding" if args.task == "embedding" else "--backend optimum"
        return (f"{what} needs optimum-intel and PyTorch, which are not installed here (pip install "
                "'cpmdesk[export]'); the default streaming backend exports chat models without them")
    if args.scale_estimation and not args.dataset:
        return "--scale-estimation needs --dataset (use --dataset auto to stay offline) and --backend optimum"
    return None


def _check_out(out: Path) -> str | None:
    """What is wrong with OUT, as a one-line error, before any model is read: its folder must exist and be
    writable, and OUT must not be a file (a non-empty OUT without --force is refused by the exporter)."""
    out = out.expanduser().absolute()
    parent = out.parent
    if not parent.exists():
        return f"{parent} does not exist; create it first (mkdir -p) or choose an OUT in an existing folder"
    if not parent.is_dir():
        return f"{parent} is not a folder; choose an OUT inside a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write in {parent} (permission denied); choose an OUT in a folder you can write to"
    if out.exists() and not out.is_dir():
        return f"{out} is a file; choose a folder path for OUT"
    return None


def _installed(distribution: str) -> bool:
    """True when the distribution is installed (its metadata is there; the bundle ships none for optimum)."""
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
