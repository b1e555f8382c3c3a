"""Chapter 06a's rungs through `mlp-names`: `train --model {mlp,bigram,transformer}`, then `sample`, `score`,
`evaluate` and `export` of the run; the run records its model; a transformer's run resumes bit for bit; settings of
another rung are refused in one line. Checked against independent references: the bigram's loss from plain Python,
the transformer's val from chapter 04's `evaluate` over every window, the export's logits against the run's."""
import collections, json, math, os, re, subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
MLP_NAMES = str(Path(sys.executable).parent / 'mlp-names')
NAMES = ROOT / 'data' / 'names.txt'
# a small transformer: the tests check the plumbing, chapter 06a and bench/ladder.py the full-size model
SMALL = ('--model', 'transformer', '--n-layers', 1, '--n-embd', 16, '--n-head', 2)


def mlp(*args, cwd):
    return subprocess.run([MLP_NAMES, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def refused(r, *needles):
    assert r.returncode != 0 and r.stdout == '', (r.returncode, r.stdout)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A small transformer run of 60 steps, made once for the tests that read it."
    d = tmp_path_factory.mktemp('ladder')
    r = mlp('train', '--data', NAMES, '--run', 't', '--steps', 60, '--quiet', *SMALL, cwd=d)
    assert r.returncode == 0, r.stderr
    return d


def test_bad_combinations_are_refused_in_one_line(tmp_path):
    cases = [
        (('--model', 'bigram', '--preset', 'best'), '--preset', 'not a setting of --model bigram'),
        (('--model', 'bigram', '--steps', 5), '--steps', '--model bigram'),
        (('--model', 'bigram', '--minutes', 1), '--minutes', '--model bigram'),
        (('--model', 'transformer', '--preset', 'tree'), '--preset', '--model transformer'),
        (('--model', 'transformer', '--n-hidden', 64), '--n-hidden', '--model transformer'),
        (('--n-head', 2), '--n-head', '--model mlp'),
        (('--model', 'transformer', '--n-embd', 30, '--n-head', 4), '--n-embd 30', 'multiple of --n-head 4'),
    ]
    for args, *needles in cases:
        refused(mlp('train', '--data', NAMES, '--run', 'x', *args, cwd=tmp_path), *needles)
    r = mlp('train', '--data', NAMES, '--run', 'x', '--model', 'rnn', cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice: 'rnn'" in r.stderr  # argparse's usage and error
    assert not (tmp_path / 'x').exists()


def test_bigram_run_is_the_closed_form(tmp_path):
    "The bigram's val through the command equals add-one counting done here in plain Python."
    r = mlp('train', '--model', 'bigram', '--data', NAMES, '--run', 'b', '--quiet', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('step 1: '), r.stderr
    assert json.loads((tmp_path / 'b' / 'run.json').read_text())['config']['model'] == 'bigram'
    from mlp_names.dataset import split_words
    from mlp_names.files import load_words
    words = load_words(NAMES)
    train, val, _ = split_words(words, 42)
    V = len(set(''.join(words))) + 1
    pairs = collections.Counter((a, b) for w in train for a, b in zip('.' + w, w + '.'))
    rows = collections.Counter()
    for (a, _), n in pairs.items():
        rows[a] += n
    logs = [math.log((pairs[a, b] + 1) / (rows[a] + V)) for w in val for a, b in zip('.' + w, w + '.')]
    r = mlp('evaluate', '--run', 'b', '--json', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert abs(json.loads(r.stdout)['val'] - -math.fsum(logs) / len(logs)) < 1e-12
    refused(mlp('train', '--run', 'b', '--resume', cwd=tmp_path), 'bigram', 'nothing to resume')
    r = mlp('export', '--run', 'b', '--out', 'b.json', cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_transformer_run_records_its_model(trained):
    config = json.loads((trained / 't' / 'run.json').read_text())['config']
    assert config['model'] == 'transformer' and config['n_head'] == 2 and config['max_steps'] == 60
    assert config['batch_size'] == 32 and config['lr'] == 5e-4  # makemore.py's


def test_sample_score_evaluate_export_of_a_transformer(trained):
    from mlp_names.files import build_dataset_fast, load_words
    from mlp_names.ladder import load_ladder_run, read_rung_export
    from mlp_names.train import Run, evaluate
    r = mlp('sample', '--run', 't', '-n', 5, '--seed', 0, '--json', cwd=trained)
    assert r.returncode == 0, r.stderr
    names = json.loads(r.stdout)
    assert len(names) == 5 and all(re.fullmatch('[a-z]+', n) for n in names), names
    run = load_ladder_run(trained / 't')
    from mlp_names.sampling import sample
    assert names == sample(run, n=5, seed=0)
    r = mlp('score', '--run', 't', 'emma', 'zzxq', '--json', cwd=trained)
    assert r.returncode == 0, r.stderr
    r = mlp('evaluate', '--run', 't', '--json', cwd=trained)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    # chapter 04's evaluate over every window of the validation names: the command's per-name shortcut
    words = load_words(NAMES)
    X, Y = Run.splits(run, words)['val']
    assert abs(got['val'] - evaluate(run.model, X, Y)) < 1e-5, got
    r = mlp('export', '--run', 't', '--out', 't.json', cwd=trained)
    assert r.returncode == 0 and 'exported the run in t (step 60)' in r.stdout, r.stderr
    back = read_rung_export(trained / 't.json')
    with torch.no_grad():
        assert torch.equal(back.net(X[:500]), run.model.eval()(X[:500]))
    refused(mlp('export', '--run', 't', '--format', 'onnx', '--out', 't.onnx', cwd=trained),
            '--format onnx', '--format json')
    refused(mlp('plot', '--run', 't', cwd=trained), "an MLP's diagnostics", 'a transformer')


def test_transformer_minutes(tmp_path):
    """`train --model transformer --minutes 2` (a small one: the budget, not the model, is tested), then sample,
    score, evaluate and export: the budget becomes its step count, recorded. How closely the budget is kept is
    bench/ladder.py's measurement, not checked here."""
    r = mlp('train', '--data', NAMES, '--run', 'm', '--minutes', 2, *SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    m = re.match(r'2 minutes here is about ([\d,]+) steps of the transformer\n', r.stdout)
    assert m, r.stdout
    steps = int(m.group(1).replace(',', ''))
    config = json.loads((tmp_path / 'm' / 'run.json').read_text())['config']
    assert config['max_steps'] == steps
    assert config['threads'] == min(2, os.cpu_count())  # a budget's threads, as for the MLP
    assert f'step {steps}:' in r.stdout
    for cmd in (('sample', '-n', 3, '--seed', 1), ('score', 'emma'), ('evaluate',),
                ('export', '--out', 'm.json')):
        r = mlp(cmd[0], '--run', 'm', *cmd[1:], cwd=tmp_path)
        assert r.returncode == 0, (cmd, r.stderr)


def test_transformer_resumes_bit_for_bit(trained, tmp_path):
    "30 steps, then resumed to 60, equal 60 steps in one go (the fixture's run)."
    r = mlp('train', '--data', NAMES, '--run', 'h', '--steps', 30, '--quiet', *SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    refused(mlp('train', '--run', 'h', '--resume', '--model', 'transformer', cwd=tmp_path),
            '--resume', '--model')
    r = mlp('train', '--run', 'h', '--resume', '--steps', 60, '--quiet', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('step 60: '), r.stderr
    a = torch.load(tmp_path / 'h' / 'run.pt', weights_only=True)
    b = torch.load(trained / 't' / 'run.pt', weights_only=True)
    assert a['model'].keys() == b['model'].keys()
    assert all(torch.equal(a['model'][k], b['model'][k]) for k in a['model'])
    assert all(torch.equal(x, y) for x, y in zip(a['optimizer']['exp_avg'], b['optimizer']['exp_avg']))
