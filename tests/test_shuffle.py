"""Batches in epochs (`shuffle`, chapter 05a): every training example once an epoch through the
real training loop, a run resumed across an epoch's end bit for bit with nothing saved about its
place in the data, each member its own order, the original's random draws untouched, and the flag
refused in one line where it means nothing."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from mlp_names.deeper import DeeperConfig, epoch_order, member_config, preset
from mlp_names.files import load_words
from mlp_names.runs import load_run, save_run
from mlp_names.train import TrainConfig, fit, new_run

ROOT = Path(__file__).resolve().parent.parent
MLP_NAMES = str(Path(sys.executable).parent / 'mlp-names')
NAMES = ROOT / 'data' / 'names.txt'
WORDS = load_words(NAMES)
SMALL = dict(n_hidden=32, n_layers=2, lr=1e-2, checkpoint_every=0, shuffle=True)


class Recorded:
    "A training step that keeps a copy of every batch it is given."

    def __init__(self, step):
        self.step, self.optimizer, self.batches = step, step.optimizer, []

    def __call__(self, Xb, Yb):
        self.batches.append(Xb.clone())
        return self.step(Xb, Yb)


def test_the_loop_sees_every_example_once_an_epoch():
    "The batches the loop trained on are the epochs' rows: all of the split in each epoch."
    config = DeeperConfig(batch_size=4096, max_steps=100, **SMALL)
    run = new_run(config, WORDS)
    X, Y = run.splits(WORDS)['train']
    run.step_fn = recorded = Recorded(run.step_fn)
    fit(run, X, Y, 100)
    n = len(X)
    rows = torch.cat([config.batch_at(t, n, None) for t in range(100)])
    assert torch.equal(torch.cat(recorded.batches), X[rows])  # what the loop trained on
    assert len(rows) == 100 * 4096 > 2 * n
    for e in range(2):
        assert torch.equal(rows[e * n:(e + 1) * n].sort().values, torch.arange(n))


def test_random_draws_miss_about_a_third_of_an_epoch():
    "The reason for epochs: m draws at random from n examples leave (1 - 1/n)^m of them unseen."
    config = DeeperConfig(batch_size=4096)
    n = len(new_run(config, WORDS).splits(WORDS)['train'][0])
    g = torch.Generator().manual_seed(config.init_seed)
    rows = torch.cat([config.batch_at(t, n, g) for t in range(n // 4096)])
    unseen = 1 - len(rows.unique()) / n
    assert abs(unseen - (1 - 1 / n) ** len(rows)) < 0.01 and unseen > 0.3


def test_without_shuffle_the_loop_draws_the_originals_batches():
    "The loop's batches, step after step, are torch.randint's on the run's generator, as before."
    config = DeeperConfig(batch_size=256, max_steps=20, **{**SMALL, 'shuffle': False})
    run = new_run(config, WORDS)
    X, Y = run.splits(WORDS)['train']
    g = torch.Generator()
    g.set_state(run.generator.get_state())  # no dropout: the batches are all it draws
    run.step_fn = recorded = Recorded(run.step_fn)
    fit(run, X, Y, 20)
    expected = [X[torch.randint(0, len(X), (256,), generator=g)] for _ in range(20)]
    assert all(torch.equal(a, b) for a, b in zip(recorded.batches, expected, strict=True))


def test_a_shuffled_run_resumes_bit_for_bit_across_an_epochs_end(tmp_path):
    "Saved at step 40 of epoch 0, loaded with no order cached, it crosses into epoch 1 exactly."
    config = DeeperConfig(batch_size=4096, max_steps=60, **SMALL)
    straight, stopped = new_run(config, WORDS), new_run(config, WORDS)
    X, Y = straight.splits(WORDS)['train']
    assert 40 * 4096 < len(X) < 60 * 4096
    fit(straight, X, Y, 60)
    fit(stopped, X, Y, 40)
    save_run(stopped, tmp_path)
    epoch_order.cache_clear()
    resumed = load_run(tmp_path)
    assert resumed.config.shuffle
    fit(resumed, X, Y, 60)
    assert straight.history['loss'] == resumed.history['loss']
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_shuffle_changes_the_batches_and_random_draws_stay_the_originals():
    n = 10_000
    shuffled = DeeperConfig(shuffle=True).batch_at(0, n, torch.Generator().manual_seed(1))
    drawn = DeeperConfig().batch_at(0, n, torch.Generator().manual_seed(1))
    original = TrainConfig().batch_at(0, n, torch.Generator().manual_seed(1))
    assert torch.equal(drawn, original) and not torch.equal(shuffled, drawn)
    assert torch.equal(original, torch.randint(0, n, (64,), generator=torch.Generator().manual_seed(1)))


def test_each_member_has_its_own_order():
    config = preset('tree', members=2, shuffle=True)
    first, second = (member_config(config, i).batch_at(0, 10_000, None) for i in (0, 1))
    assert not torch.equal(first, second)


def test_shuffle_is_refused_on_the_bigram_in_one_line(tmp_path):
    r = subprocess.run([MLP_NAMES, 'train', '--data', NAMES, '--run', tmp_path / 'r',
                        '--model', 'bigram', '--shuffle'], capture_output=True, text=True, timeout=120)
    assert r.returncode in (1, 2) and '--shuffle: not a setting of --model bigram' in r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path / 'r').exists()


def test_the_command_trains_shuffled_and_records_it(tmp_path):
    r = subprocess.run([MLP_NAMES, 'train', '--data', NAMES, '--run', tmp_path / 'r', '--quiet',
                        '--preset', 'tree', '--steps', '30', '--warmup', '5', '--shuffle'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert load_run(tmp_path / 'r').config.shuffle


def test_the_transformer_trains_on_epochs_of_whole_names(tmp_path):
    r = subprocess.run([MLP_NAMES, 'train', '--data', NAMES, '--run', tmp_path / 'r', '--quiet',
                        '--model', 'transformer', '--n-layers', '1', '--n-embd', '16', '--n-head', '2',
                        '--steps', '3', '--shuffle'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / 'r' / 'run.json').read_text())['config']
    assert config['model'] == 'transformer' and config['shuffle']
