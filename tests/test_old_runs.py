"""Runs saved before this version still load: tests/fixtures/run_before_autograd was written by the previous
release (run format 3, its config says `fused: true` where this one says `autograd: false`, and its history has no
`step_ud`). A run of format 2 is refused with a message that says to train it again."""
import shutil
from pathlib import Path

import pytest
import torch

from mlp_names.deeper import DeeperConfig
from mlp_names.files import names_path
from mlp_names.runs import RUN_FILE, continue_run, load_run, save_run, state_sha256
from mlp_names.sampling import sample, score

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'run_before_autograd'


@pytest.fixture
def old_run(tmp_path):
    return Path(shutil.copytree(FIXTURE, tmp_path / 'old'))


def test_a_run_of_the_previous_release_loads_and_resumes(old_run):
    run = load_run(old_run)
    assert isinstance(run.config, DeeperConfig) and run.config.autograd is False  # `fused: true` meant by hand
    assert (run.step, run.config.n_hidden, run.history['step_ud']) == (60, 8, [])
    assert len(sample(run, n=5, seed=0)) == 5 and score(run, ['emma'])[0]['nats'] > 0
    resumed = continue_run(old_run, 90, data=names_path(), quiet=True)
    assert resumed.step == 90 and len(resumed.history['step_ud']) == 30 // resumed.config.ud_every + 1
    assert load_run(old_run).step == 90


def test_format_2_is_refused_with_how_to_retrain(old_run):
    state = torch.load(old_run / RUN_FILE, weights_only=True)
    state['version'] = 2
    state['sha256'] = state_sha256(state)
    torch.save(state, old_run / RUN_FILE)
    with pytest.raises(ValueError, match='run format version 2, this mlp_names reads 3; train the run again'):
        load_run(old_run)
