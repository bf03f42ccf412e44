"""The ``equilibria`` command: train, resume, sample, config, data."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from equilibria.cli import classifier as classifier_cli
from equilibria.cli import evaluate as evaluate_cli
from equilibria.cli import game
from equilibria.launch import LAUNCHERS

# Everything that needs torch is imported where a command runs, so that --help answers at once.

EXAMPLES = """examples:
  equilibria train                                   # a small GAN on the bundled 8x8 digits
  equilibria train configs/advas-mnist-wgangp-advas.yaml --set data.root=../shared/data/mnist --set data.split=test
  equilibria resume runs/my-run --set train.steps=20000
  equilibria sample runs/my-run -n 100 --out samples.png
  equilibria data download mnist --root data/mnist
  equilibria experiment experiments/advas-mnist.yaml --jobs 2
  equilibria report runs/advas-mnist runs/my-run --out report.html
  equilibria evaluate runs/my-run --metrics fid,kid --num-samples 5000
  equilibria classifier train mnist --root ../shared/data/mnist --split test
"""


def _train(args: argparse.Namespace) -> None:
    from equilibria.training.config import load_config
    from equilibria.training.run import train

    config = load_config(args.config, args.set)
    run_dir = train(config, args.run_dir)
    _say(f"run written to {run_dir}")


def _resume(args: argparse.Namespace) -> None:
    from equilibria.training.run import load_run_config, train

    run_dir = Path(args.run_dir)
    train(load_run_config(run_dir, args.set), run_dir, resume=True)
    _say(f"run written to {run_dir}")


def _say(message: str) -> None:
    """Print on the first of the data-parallel processes only (torchrun sets RANK)."""
    if os.environ.get("RANK", "0") == "0":
        print(message)


def _sample(args: argparse.Namespace) -> None:
    from equilibria.training.sample import sample_run

    out = sample_run(Path(args.run_dir), checkpoint=args.checkpoint, num=args.num, out=args.out,
                     use_ema=not args.no_ema, seed=args.seed, tensor_out=args.tensor)
    print(f"samples written to {out}")
    if args.tensor:
        print(f"tensor of the samples written to {args.tensor}")


def _experiment(args: argparse.Namespace) -> None:
    import yaml

    from equilibria.experiment import (archive, load_experiment, progress, run_dirs, run_experiments, run_steps,
                                       write_report)
    from equilibria.training.config import ConfigError

    scale = "quick" if args.quick else args.scale
    if len(args.files) > 1:
        for option, value in (("--out", args.out), ("--archive", args.archive)):
            if value:
                raise ConfigError(f"{option}: got {value!r} with {len(args.files)} experiment files; allowed: "
                                  "one file (with several, each file's runs go to runs/<file name>)")
    studies = []  # every file loaded and checked before any run starts
    for file in args.files:
        name = Path(file).stem + (f"-{scale}" if scale else "")
        studies.append((file, name, load_experiment(file, scale), Path(args.out or Path("runs") / name)))
    if len({out for *_, out in studies}) < len(studies):
        raise ConfigError(f"experiment files: got {' '.join(args.files)}; allowed: files of different names "
                          "(each file's runs go to runs/<file name>)")
    if args.probe is not None and (not args.status or args.probe < 1):
        raise ConfigError(f"--probe: got {args.probe}{'' if args.status else ' without --status'}; allowed: an "
                          "integer >= 1, with --status")
    if args.status:
        for _, _, experiment, out in studies:
            print(progress(experiment, out, args.jobs, args.set, args.probe or 0, args.threads), end="")
        return

    def finish(i: int, runs: dict[str, list[Path]]) -> None:  # an experiment with no run left: its report
        file, name, experiment, out = studies[i]
        command = f"equilibria experiment {file}" + (f" --scale {scale}" if scale else "")
        steps = run_steps(experiment, out, args.set)  # a run started with fewer steps than the file's is not done
        path = write_report(runs, experiment.metrics, out, name, experiment.baselines, experiment.failure, command,
                            experiment.ratio, experiment.at, steps, experiment.reach)
        print(f"report written to {path}", flush=True)
        if args.archive:
            written = archive(runs, out, Path(args.archive), steps)
            total = sum(map(len, runs.values()))
            print(f"records of {len(written)} of {total} runs (the finished ones) and the report copied to "
                  f"{args.archive}")

    if args.report_only:
        for i, (_, _, experiment, out) in enumerate(studies):
            finish(i, run_dirs(experiment, out, args.set))
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("equilibria experiment under torchrun: got WORLD_SIZE="
                          f"{os.environ['WORLD_SIZE']}; allowed: one process, with --processes N to train "
                          "each run on N processes (the experiment starts torchrun for each run)")
    cluster = {"timeout_min": args.timeout_min} if args.timeout_min else {}
    if args.partition:
        cluster["slurm_partition"] = args.partition
    for option in args.slurm:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise ConfigError(f"--slurm: got {option!r}; allowed: KEY=VALUE, a submitit slurm parameter "
                              "without its slurm_ prefix (e.g. account=abc, qos=normal)")
        cluster[f"slurm_{key}"] = yaml.safe_load(value)
    run_experiments([(experiment, out) for _, _, experiment, out in studies], jobs=args.jobs, threads=args.threads,
                    extra=args.set, processes=args.processes, launcher=args.launcher, cluster=cluster,
                    on_finished=finish, only=args.groups.split(",") if args.groups is not None else None)


def _report(args: argparse.Namespace) -> None:
    from equilibria.report_page import write_page

    print(f"report written to {write_page(args.paths, args.out, args.title)}")


def _config(args: argparse.Namespace) -> None:
    import yaml

    from equilibria.training.config import config_reference, load_config, to_dict

    if args.reference:
        print(config_reference(), end="")
        return
    print(yaml.safe_dump(to_dict(load_config(args.config, args.set)), sort_keys=False), end="")


def _download(args: argparse.Namespace) -> None:
    from equilibria.data import data_root, download_mnist

    root = Path(args.root) if args.root else data_root(None) / "mnist"
    splits = ("train", "test") if args.split == "all" else (args.split,)
    kwargs = {"mirrors": args.mirror} if args.mirror else {}
    for path in download_mnist(root, splits=splits, **kwargs):
        print(f"verified {path}")


def _info(args: argparse.Namespace) -> None:
    from equilibria.data import describe, load_dataset

    dataset = load_dataset(args.name, root=args.root, split=args.split, image_size=args.image_size,
                           num_samples=args.num_samples)
    print(describe(dataset))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="equilibria", description="Train GANs that reach a better equilibrium.",
                                  epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.steps=500 (repeatable)")

    p = commands.add_parser("train", help="train a GAN from a YAML config (default: digits)")
    p.add_argument("config", nargs="?", help="YAML config file; defaults for every key not given")
    p.add_argument("--run-dir", help="where to write the run (default: config's run_dir, else runs/<time>-...)")
    with_overrides(p)
    p.set_defaults(func=_train)

    p = commands.add_parser("resume", help="continue a run from its last checkpoint")
    p.add_argument("run_dir", help="the run directory, as written by 'equilibria train' (its config.yaml and "
                                   "checkpoints/); --set train.steps=N trains it further")
    with_overrides(p)
    p.set_defaults(func=_resume)

    p = commands.add_parser("sample", help="draw samples from a run's checkpoint")
    p.add_argument("run_dir", help="the run directory (written by 'equilibria train')")
    p.add_argument("--checkpoint", help="a checkpoint file (default: the run's latest)")
    p.add_argument("-n", "--num", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", help="PNG path (default: RUN_DIR/samples/sample-step-N.png)")
    p.add_argument("--tensor", help="also save the samples as a tensor file (.pt)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent codes")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even if the run kept an EMA")
    p.set_defaults(func=_sample)

    p = commands.add_parser("experiment", help="run groups of configs over seeds (resumable) and write a report")
    p.add_argument("files", nargs="+", metavar="file",
                   help="experiment YAML: seeds, set, metrics, groups (see equilibria/experiment.py); several "
                        "files are one queue, their runs in the order given, --jobs at a time")
    p.add_argument("--out", help="directory of the runs and the report (default: runs/<file name>; one file only)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at the same time (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--processes", type=int, default=1,
                   help="processes per run: > 1 trains each run under torchrun on one machine (default 1)")
    p.add_argument("--launcher", choices=LAUNCHERS, default="local",
                   help="local: subprocesses here, --jobs at a time (default); slurm: a submitit job per run "
                        "(requeued and resumed on preemption or timeout); submitit-local: the same jobs, "
                        "all at once on this machine")
    p.add_argument("--timeout-min", type=int, help="submitit launchers: each job's time limit in minutes")
    p.add_argument("--partition", help="slurm launcher: the partition")
    p.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="slurm launcher: another submitit slurm parameter, e.g. --slurm account=abc (repeatable)")
    p.add_argument("--scale", help="one of the file's scales (e.g. paper: the paper's widths, batches and steps); "
                                   "runs go to runs/<file>-<scale>")
    p.add_argument("--quick", action="store_true", help="the file's quick scale: the same code in a few minutes")
    p.add_argument("--groups", metavar="A,B",
                   help="train only these groups (e.g. to finish the cheap ones first); the report still covers "
                        "every group's finished runs")
    p.add_argument("--report-only", action="store_true", help="only (re)write the report from existing runs")
    p.add_argument("--status", action="store_true",
                   help="only print where the experiment stands: runs done, partial and new per group, and the "
                        "time left (in wall-clock time at --jobs)")
    p.add_argument("--probe", type=int, metavar="STEPS",
                   help="with --status: time each group with steps left on a STEPS-step run of its first seed here "
                        "(one evaluation; in a temporary directory) and count the time left at that rate (its runs' "
                        "records may come from another machine)")
    p.add_argument("--archive", metavar="DIR",
                   help="then copy the finished runs' records (config, metrics; no weights) and the report to DIR; "
                        "copied back into the experiment's directory they count as done (one file only)")
    with_overrides(p)
    p.set_defaults(func=_experiment)

    p = commands.add_parser("report", help="one self-contained HTML page comparing runs and experiments")
    p.add_argument("paths", nargs="+", metavar="RUN_OR_EXPERIMENT_DIR",
                   help="run directories, and experiment directories (their groups, claims and seeds)")
    p.add_argument("--out", default="report.html", help="the HTML file (default report.html)")
    p.add_argument("--title", help="the page's title (default: the directories' names)")
    p.set_defaults(func=_report)

    p = commands.add_parser("config", help="print the resolved, validated config")
    p.add_argument("config", nargs="?", help="YAML config file (default: the built-in defaults)")
    p.add_argument("--reference", action="store_true", help="print every key as docs/CONFIG.md (markdown)")
    with_overrides(p)
    p.set_defaults(func=_config)

    game.add_parser(commands)
    evaluate_cli.add_parser(commands)
    classifier_cli.add_parser(commands)

    data = commands.add_parser("data", help="download or describe datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    p = data_commands.add_parser("download", help="download MNIST and verify its MD5 checksums")
    p.add_argument("name", choices=["mnist"])
    p.add_argument("--root", help="target directory (default: $EQUILIBRIA_DATA/mnist, else data/mnist)")
    p.add_argument("--split", choices=["train", "test", "all"], default="all")
    p.add_argument("--mirror", action="append", help="base URL to fetch from instead of the official mirrors")
    p.set_defaults(func=_download)
    p = data_commands.add_parser("info", help="describe a dataset")
    p.add_argument("name")
    p.add_argument("--root")
    p.add_argument("--split", default="train", choices=["train", "test", "all"])
    p.add_argument("--image-size", type=int)
    p.add_argument("--num-samples", type=int)
    p.set_defaults(func=_info)
    return top


def _print_error(error: BaseException) -> None:
    print(f"equilibria: error: {error}", file=sys.stderr)
    for note in getattr(error, "__notes__", ()):
        print(note if note.startswith("equilibria:") else f"equilibria: {note}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 a bad config, option, file or checkpoint; 3 a non-finite quantity stopped
    the run; 1 an I/O error; 130 and 143 stopped by SIGINT and SIGTERM (a checkpoint written)."""
    args = parser().parse_args(argv)  # --help and bad options exit here, before torch is imported
    from equilibria.core.finite import NonFiniteError
    from equilibria.data import DownloadError
    from equilibria.training.checkpoint import CheckpointError
    from equilibria.training.config import ConfigError
    from equilibria.training.run import RunStopped

    stopped_together = False  # every process reached the same point: wait for the others before leaving
    ignored: dict = {}
    try:
        args.func(args)
        code, stopped_together = 0, True
    except RunStopped as stopped:
        # already stopping: a late copy of the signal (torchrun sends each process its own, one after
        # another) must not kill this one before its message and the others' checkpoint
        ignored = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGTERM, signal.SIGINT)}
        print(f"equilibria: {stopped}", file=sys.stderr)
        code, stopped_together = stopped.exit_code, True
    except NonFiniteError as error:
        _print_error(error)
        code = 3
    except (ConfigError, CheckpointError, DownloadError, FileNotFoundError, ValueError) as error:
        _print_error(error)
        code = 2
    except OSError as error:
        _print_error(error)
        code = 1
    except KeyboardInterrupt:
        print("equilibria: interrupted", file=sys.stderr)
        code = 130
    finally:
        _leave_process_group(wait=stopped_together)
        for signum, handler in ignored.items():
            signal.signal(signum, handler)
    return code


def _leave_process_group(wait: bool) -> None:
    """Under torchrun, end the process group (``end_process_group``) before leaving. With ``wait``, every
    process first reaches the barrier (the first one writes last; a stopped run's messages are all printed
    before torchrun sees an exit)."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is None or not distributed.is_initialized():
        return
    from equilibria.core.parallel import end_process_group

    if wait:
        distributed.barrier()
    end_process_group()


if __name__ == "__main__":
    sys.exit(main())
