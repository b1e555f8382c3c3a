"""`mlp-names train --members K` (chapters 05a, 05b): K models trained one after another and
averaged into one. Each case is a try a user would make: an interrupt in the middle of a member,
the flag where it means nothing, a width the averaged model cannot have, and every command that
reads a run, used on one of several members."""
import json, re, shutil, signal, subprocess, sys

import pytest
import torch
import torch.nn.functional as F

from mlp_names.fused import eval_forward
from mlp_names.runs import load_run, member_dir
from mlp_names.train import fit
from mlp_names.vocab import UserError

from test_minutes import MLP_NAMES, NAMES, train, weights

SMALL = ('--preset', 'original', '--n-hidden', 48, '--warmup', 20, '--cosine')


def test_an_interrupt_inside_a_member_resumes_exactly(tmp_path):
    "Ctrl-C in the second member saves it; --resume finishes it, bit for bit as one go."
    cmd = [MLP_NAMES, 'train', '--data', NAMES, '--run', 'b', '--members', 2, '--steps', 3000,
           *SMALL]
    p = subprocess.Popen(list(map(str, cmd)), cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    while (line := p.stdout.readline()) and line != 'member 2 of 2\n':
        pass
    assert line == 'member 2 of 2\n', p.stderr.read()
    for _ in range(5): p.stdout.readline()  # log lines every 100 steps: a few hundred steps in
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    m = re.search(r'interrupted; saved member 2 of 2 at step (\d+) to b; '
                  r'continue with `mlp-names train --run b --resume`', err)
    assert m and 0 < int(m.group(1)) < 3000, err
    assert json.loads((tmp_path / 'b' / 'run.json').read_text())['step'] == 0  # not averaged yet
    assert json.loads((tmp_path / 'b' / 'member1' / 'run.json').read_text())['step'] == 3000
    r = train('--run', 'b', '--resume', '--quiet', cwd=tmp_path)
    assert r.returncode == 0 and 'step 3000:' in r.stdout, r.stderr
    r = train('--run', 'c', '--members', 2, '--steps', 3000, '--quiet', *SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for where in ('', 'member1', 'member2'):
        a, b = weights(tmp_path / 'b' / where), weights(tmp_path / 'c' / where)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), where


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    "A run of two small members, trained once for the tests below."
    where = tmp_path_factory.mktemp('pair')
    r = train('--run', 'p', '--members', 2, '--steps', 400, '--quiet', *SMALL, cwd=where)
    assert r.returncode == 0, r.stderr
    return where


def test_the_averaged_model_is_the_mean_of_its_members(pair):
    "Its logits are the members' mean, each member is an ordinary run, and it never trains."
    run = load_run(pair / 'p')
    members = [load_run(member_dir(pair / 'p', i)) for i in range(2)]
    assert [m.config.init_seed for m in members] == [2147483647, 2147483648]
    X, Y = run.splits(NAMES.read_text().split())['val']
    mean = sum(eval_forward(m.model)(X) for m in members) / 2
    assert (eval_forward(run.model)(X) - mean).abs().max() < 5e-6  # float32 rounding
    # its losses are scored member by member (chapter 05a): the loss of the members' mean
    val = run.losses(NAMES.read_text().split())['val']
    assert abs(val - F.cross_entropy(mean.double(), Y).item()) < 1e-6, val
    with pytest.raises(UserError, match='not trained as one'):
        fit(run, X, Y, run.step + 1)


def test_every_command_reads_a_run_of_members(pair):
    "sample, evaluate, score and export use the averaged model as any other."
    def cli(*args):
        r = subprocess.run([MLP_NAMES, *map(str, args)], cwd=pair, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout
    assert len(cli('sample', '--run', 'p', '-n', 5).split()) == 5
    assert re.search(r'val +\d\.\d{4}', cli('evaluate', '--run', 'p', '--data', NAMES))
    assert len(cli('score', '--run', 'p', 'emma', 'zzqx').strip().splitlines()) == 2
    cli('export', '--run', 'p', '--out', 'p.safetensors', '--format', 'safetensors')
    assert (pair / 'p.safetensors').stat().st_size > 0


@pytest.mark.parametrize('args, message', [
    (('--members', 0), 'argument --members: must be at least 1 and at most 16, got 0'),
    (('--members', 2, '--n-hidden', 3000), '--members 2 × --n-hidden 3000 must be at most 4096'),
    (('--members', 2, '--model', 'transformer'),
     '--members: not a setting of --model transformer'),
    (('--members', 2, '--model', 'bigram'), 'members: not a setting of --model bigram'),
])
def test_members_that_cannot_be_refused_in_one_line(tmp_path, args, message):
    r = train('--run', 'x', '--steps', 10, *args, cwd=tmp_path)  # argparse: 2, ours: 1
    last = r.stderr.strip().splitlines()[-1]  # after argparse's usage lines, where it has them
    assert r.returncode in (1, 2) and message in last and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path / 'x').exists()


def test_a_budget_is_shared_among_the_members(tmp_path):
    """--minutes with members: the first trains the step count printed; the others, planned again
    from its time, the count printed after it, recorded as --member-steps. Interrupted inside the
    second member and resumed, the run equals the one given both counts, bit for bit."""
    # one thread, as in test_minutes: on the budget's two threads this test once ended with
    # another averaged model in CI, and not in four runs after; the cause is not found yet
    args = ('--preset', 'tree', '--members', 2, '--warmup', 20, '--threads', 1)
    cmd = [MLP_NAMES, 'train', '--data', NAMES, '--run', 'm', '--minutes', 0.5, *args]
    p = subprocess.Popen(list(map(str, cmd)), cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    m = re.fullmatch(r'0\.5 minutes here is about ([\d,]+) steps of preset tree for member 1 of 2, '
                     r'the others planned from its time\n', p.stdout.readline())
    assert m, p.stderr.read()
    first = int(m.group(1).replace(',', ''))
    while (line := p.stdout.readline()) and not line.startswith('member 2:'):
        pass
    m = re.fullmatch(r"member 2: ([\d,]+) steps, (to end in the \d+ s left at member 1's pace|"
                     r"the warm-up and one more: member 1 took the whole budget)\n", line)
    assert m, line + p.stderr.read()
    second = int(m.group(1).replace(',', ''))
    assert p.stdout.readline() == 'member 2 of 2\n'
    for _ in range(second // 200): p.stdout.readline()  # log lines every 100 steps: half-way
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    # on a slow machine member 2 may be too short to stop: the run then ends, and resumes as done
    assert p.returncode == 0 or (p.returncode == 130 and 'interrupted; saved member' in err), err
    config = json.loads((tmp_path / 'm' / 'run.json').read_text())['config']
    assert (config['max_steps'], config['member_steps']) == (first, second)  # before member 2
    r = train('--run', 'm', '--resume', '--quiet', cwd=tmp_path)
    assert r.returncode == 0 and f'step {max(first, second)}:' in r.stdout, r.stderr
    for where, steps in (('m/member1', first), ('m/member2', second)):
        assert json.loads((tmp_path / where / 'run.json').read_text())['step'] == steps
    r = train('--run', 'again', '--steps', first, '--member-steps', second, '--quiet', *args,
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for where in ('member1', 'member2', ''):  # the members first: the average follows from them
        a, b = weights(tmp_path / 'm' / where), weights(tmp_path / 'again' / where)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), where


def test_a_step_count_given_on_resume_is_recorded_first(pair, tmp_path, monkeypatch):
    """--resume --steps N on a run of members is saved before a member trains: stopped then, a
    plain --resume goes on to N. Refused (other words), it leaves the run as it was."""
    from mlp_names import runs
    shutil.copytree(pair / 'p', tmp_path / 'p')
    other = tmp_path / 'other.txt'
    other.write_text('\n'.join(NAMES.read_text().split()[:3000]) + '\n')
    before = (tmp_path / 'p' / 'run.json').read_bytes()
    with pytest.raises(UserError, match='holds other words than the ones this run trained on'):
        runs.continue_run(tmp_path / 'p', 500, data=other)
    assert (tmp_path / 'p' / 'run.json').read_bytes() == before

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(runs, 'fit_members', stopped)
        with pytest.raises(KeyboardInterrupt):
            runs.continue_run(tmp_path / 'p', 500, quiet=True)
    assert load_run(tmp_path / 'p').config.max_steps == 500
    run = runs.continue_run(tmp_path / 'p', quiet=True)
    steps = [load_run(member_dir(tmp_path / 'p', i)).step for i in range(2)]
    assert run.step == 500 and steps == [500, 500], (run.step, steps)
