"""`make pretrained`: write the model shipped with the package, mlp_names/pretrained.safetensors and
pretrained.json (chapter 06, `write_weights`), from a run of the `best` preset, or from a model
exported by `mlp-names export` (the website's model.json of an earlier version).

Its losses are computed from the stored numbers on names.txt's seed-42 split; the weights are stored
in float16 only if that moves the validation loss by at most 0.001 against float32 (both are
printed), else in float32. The website's model.json is made from these files at build time
(docs/conf.py): there is no other copy.

    python tools/pretrained.py --run runs/best
    python tools/pretrained.py --export best.json --note 'docs/try/model.json of commit b236d03'
"""

import argparse, json, sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mlp_names.dataset import split_words  # noqa: E402
from mlp_names.deeper import preset  # noqa: E402
from mlp_names.files import load_words  # noqa: E402
from mlp_names.runs import load_run, run_words, words_sha256  # noqa: E402
from mlp_names.sampling import (
    PRETRAINED,
    KnownWords,
    Sampler,
    read_export,
    read_weights,  # noqa: E402
    weights_card,
    write_weights,
)
from mlp_names.vocab import UserError  # noqa: E402

ARCHITECTURE = ('block_size', 'merge', 'n_layers', 'n_embd', 'n_hidden')
MAX_VAL_CHANGE = 1e-3  # the most that float16 storage may move the validation loss


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        '--run', default='runs/best', help='a run of the best preset (default: runs/best)'
    )
    src.add_argument(
        '--export',
        metavar='FILE',
        help='a model exported with `mlp-names export` (JSON) instead of a run',
    )
    p.add_argument(
        '--note', default='', help='where the run or the export came from, recorded in the JSON'
    )
    p.add_argument(
        '--preset', default='best', help='the preset the model must have the architecture of'
    )
    p.add_argument(
        '--out',
        default=str(PRETRAINED.with_suffix('.safetensors')),
        help='the safetensors file to write',
    )
    args = p.parse_args(argv)
    words = load_words()  # names.txt, found or fetched and checked
    if args.export:
        d = read_export(args.export)
        source = Sampler(d['model'], d['vocab'], d['block_size'], {'config': d['config']})
        note = {
            'run': args.note or f'the exported model {Path(args.export).name}',
            'preset': args.preset,
        }
        known = KnownWords(d['known'])
    else:
        run = load_run(args.run)
        words = run_words(run)
        source, known = Sampler.of(run), None
        note = {'run': f'{args.run} at step {run.step}', 'preset': args.preset}
    config, want = source.info['config'], preset(args.preset)
    if wrong := [k for k in ARCHITECTURE if getattr(config, k) != getattr(want, k)]:
        raise UserError(f'the model is not of the {args.preset} preset ({", ".join(wrong)} differ)')
    if known is not None and (
        missing := [w for w in split_words(words, config.split_seed)[0] if w not in known]
    ):
        raise UserError(
            f"{args.export}: its known words are not names.txt's training split "
            f"({len(missing)} missing)"
        )
    note.update(
        command=f'mlp-names train --preset {args.preset} --threads 2',
        data_sha256=words_sha256(words),
    )
    if args.note and not args.export:
        note['note'] = args.note
    losses = {
        dt: weights_card(source, words, dt)[1]['losses'] for dt in (torch.float32, torch.float16)
    }
    change = losses[torch.float16]['val'] - losses[torch.float32]['val']
    dtype = torch.float16 if abs(change) <= MAX_VAL_CHANGE else torch.float32
    note['float32_losses'] = {k: round(v, 6) for k, v in losses[torch.float32].items()}
    path = write_weights(source, args.out, words, dtype=dtype, note=note)
    shipped = read_weights(path)
    val32, val16 = losses[torch.float32]['val'], losses[torch.float16]['val']
    stored = str(dtype).removeprefix('torch.')
    print(f'val {val32:.6f} in float32, {val16:.6f} in float16 (change {change:+.1e}, allowed '
          f'{MAX_VAL_CHANGE}): stored in {stored}')
    recorded = json.dumps({k: round(v, 4) for k, v in shipped.info['losses'].items()})
    sizes = f'{Path(args.out).stat().st_size:,} bytes) and {path} ({path.stat().st_size:,} bytes'
    print(f'wrote {args.out} ({sizes}): {recorded}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (UserError, OSError) as e:
        print(f'tools/pretrained.py: error: {e}', file=sys.stderr)
        sys.exit(1)
