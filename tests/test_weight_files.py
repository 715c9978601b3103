"""Weight files through `kdvision eval`: tensors of the wrong dtype kind are refused naming the key
and both dtypes; unreadable or code-carrying .pt files are one line without torch's advice to
load them unsafely."""
import os
import pickle

import pytest
import torch

from kdvision.errors import UserError
from kdvision.models import create
from kdvision.safe_load import check_dtypes
from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


def eval_with(tmp_path, weights):
    cfg = write_yaml(tmp_path / "c.yaml", TINY_DIGITS)
    return run_cli("eval", str(cfg), "--checkpoint", str(weights))


def test_int8_weights_are_refused_naming_key_and_dtypes(tmp_path):
    state = create("resnet8", num_classes=10).state_dict()
    state["conv1.weight"] = state["conv1.weight"].to(torch.int8)
    torch.save(state, tmp_path / "w.pt")
    one_line_error(eval_with(tmp_path, tmp_path / "w.pt"), "w.pt", "key conv1.weight is int8 in the file but float32 in the model")


@pytest.mark.parametrize("dtype, ok", [(torch.bool, False), (torch.int64, False), (torch.complex64, False),
                                       (torch.float16, True), (torch.bfloat16, True)])
def test_dtype_kinds(dtype, ok):
    own = {"w": torch.zeros(2), "n": torch.zeros((), dtype=torch.long)}
    state = {"w": torch.zeros(2, dtype=dtype), "n": torch.tensor(3)}
    if ok:
        check_dtypes(state, own, "f.pt")
    else:
        with pytest.raises(UserError, match=f"f.pt: key w is {str(dtype)[6:]} in the file but float32 in the model"):
            check_dtypes(state, own, "f.pt")
    with pytest.raises(UserError, match="key n is float32 in the file but int64"):  # an integer buffer given floats
        check_dtypes({"n": torch.tensor(1.0)}, own, "f.pt")


class WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_code_carrying_pt_file_is_one_line_without_unsafe_advice(tmp_path):
    torch.save({"conv1.weight": WritesMarker(tmp_path / "code_ran")}, tmp_path / "w.pt")
    result = eval_with(tmp_path, tmp_path / "w.pt")
    line = one_line_error(result, "cannot load", "w.pt", "it holds the global posix.system")
    for advice in ("weights_only", "Weights only", "safe_globals", "trusted source"):
        assert advice not in result.stderr, line
    assert not (tmp_path / "code_ran").exists()


def test_random_bytes_are_one_line_without_unsafe_advice(tmp_path):
    from kdvision.safe_load import read_torch_file

    (tmp_path / "r.pt").write_bytes(bytes(range(256)) * 16)  # neither a pickle nor a zip file
    with pytest.raises(UserError) as e:
        read_torch_file(tmp_path / "r.pt")
    message = str(e.value)
    assert "r.pt as weights: not a plain weights file (Unsupported operand" in message and "\n" not in message
    assert "weights_only" not in message and "trusted" not in message


def test_pickle_written_by_plain_pickle_is_refused_too(tmp_path):
    from kdvision.safe_load import read_torch_file

    with open(tmp_path / "p.pt", "wb") as f:
        pickle.dump({"w": WritesMarker(tmp_path / "code_ran")}, f)
    with pytest.raises(UserError, match="p.pt as weights: not a"):
        read_torch_file(tmp_path / "p.pt")
    assert not (tmp_path / "code_ran").exists()
