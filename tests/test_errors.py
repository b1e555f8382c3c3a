"""`mlp-names` turns what the user asked for wrongly (a `UserError`) and what the machine refuses (an `OSError`)
into one line on stderr; anything else is a bug and keeps its traceback."""
import pytest

from mlp_names import cli
from mlp_names.vocab import UserError


def fake(exc):
    def command(args): raise exc
    return command


@pytest.mark.parametrize('exc', [UserError('lower --lr, or choose another --run'), PermissionError(13, 'Permission denied')])
def test_user_and_machine_errors_are_one_line(monkeypatch, capsys, exc):
    monkeypatch.setitem(cli.COMMANDS, 'evaluate', fake(exc))
    assert cli.main(['evaluate', '--run', 'r']) == 1
    err = capsys.readouterr().err
    assert err.startswith('mlp-names evaluate: error: ') and err.count('\n') == 1 and 'Traceback' not in err


@pytest.mark.parametrize('exc', [ValueError('shapes (3,) and (4,) do not match'), KeyError('weight'), TypeError('bad')])
def test_a_bug_keeps_its_traceback(monkeypatch, exc):
    monkeypatch.setitem(cli.COMMANDS, 'evaluate', fake(exc))
    with pytest.raises(type(exc)): cli.main(['evaluate', '--run', 'r'])


def test_the_library_raises_user_errors():
    from mlp_names.deeper import DeeperConfig
    from mlp_names.sampling import sampling_problem
    from mlp_names.train import TrainConfig
    with pytest.raises(UserError, match='TrainConfig.n_hidden must be at least 1'): TrainConfig(n_hidden=0)
    with pytest.raises(UserError, match='DeeperConfig.merge 3 must be 0'): DeeperConfig(merge=3, block_size=8)
    with pytest.raises(UserError, match='DeeperConfig.dropout 0.001 rounds to 0 in steps of 1/256'): DeeperConfig(dropout=0.001)
    assert sampling_problem('temperature', 0) == 'must be a number from 0.001 to 1000, got 0'
