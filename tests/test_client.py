"""The client people install: `pip install .` in a fresh venv, the Python API and the `digitlens`
command, against a real TorchServe."""
import csv
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from digitlens.client import Client, DigitLensError, NumberReading, Prediction, ServerUnreachable
from ops.archive import build_archive, model_files
from ops.serve import REPO_ROOT, free_port
from tests.test_inference_core import SUBSET
from training.presentations import presentation_set

SAMPLES = REPO_ROOT / "samples"
UPLOADS_OF_EACH = 20            # photographed and drawn uploads in the folder the command reads


def digitlens(*args: str, env=None) -> subprocess.CompletedProcess:
    """The command as `pip install .` installs it (its entry point, run from this checkout)."""
    return subprocess.run([sys.executable, "-m", "digitlens.cli", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """A folder of photographed and drawn digits (one level nested), a broken image, and a note."""
    folder = tmp_path_factory.mktemp("uploads")
    (folder / "drawn").mkdir()
    for kind, where, suffix in (("photo", folder, "jpg"), ("canvas", folder / "drawn", "png")):
        bodies, labels = presentation_set(kind, size=SUBSET)      # the quality checks' sets: made once a run
        for index, (body, label) in enumerate(zip(bodies[:UPLOADS_OF_EACH], labels)):
            (where / f"{kind}-{index:02d}-label{label}.{suffix}").write_bytes(body)
    (folder / "broken.png").write_bytes(b"this is not a PNG")
    (folder / "notes.txt").write_text("not an image: the folder search skips it")
    return folder


def test_the_python_client_reads_a_digit_a_number_and_an_explanation(torchserve):
    with Client(torchserve.inference_url) as client:
        seven = client.predict(SAMPLES / "seven-photo.jpg", charts=True)
        assert isinstance(seven, Prediction) and seven.label == "7" and not seven.outlier
        assert seven.model == {"name": "mnist", "version": "1.0"} and seven.charts["probabilities"].startswith("data:")
        number = client.predict((SAMPLES / "number-canvas.png").read_bytes(), number=True)
        assert isinstance(number, NumberReading) and number.number == "2026" and len(number.digits) == 4
        assert all(len(digit.box) == 4 for digit in number.digits)
        with open(SAMPLES / "seven-canvas.png", "rb") as file:
            explanation = client.explain(file, target="1", charts=True)
        assert explanation.target == 1 and explanation.prediction.label == "7"
        assert len(explanation.attributions) == 28 and "attributions" in explanation.charts
        assert client.health() == {"status": "Healthy"}


def test_the_python_client_raises_the_servers_error_and_says_when_nothing_listens(torchserve):
    with pytest.raises(DigitLensError) as refused:
        Client(torchserve.inference_url).predict(b"not an image")
    assert refused.value.status == 415 and refused.value.type == "not_an_image"
    with pytest.raises(ServerUnreachable) as unreachable:
        Client(f"http://127.0.0.1:{free_port()}", timeout=5).predict(SAMPLES / "seven-photo.jpg")
    assert "make serve" in str(unreachable.value)


def test_a_503_is_retried_with_backoff_until_a_worker_is_ready(torchserve, model_store):
    """A version registered with no worker answers 503 until one is scaled up, a second later."""
    config, weights, network_file = model_files("mnist")
    build_archive("mnist", "7.7", weights, config, network_file, model_store)
    management = torchserve.management_url
    registered = requests.post(f"{management}/models", params={"url": "mnist-7.7.mar", "initial_workers": 0}, timeout=60)
    assert registered.ok, registered.text
    try:
        assert requests.post(f"{torchserve.inference_url}/predictions/mnist/7.7", data=b"x",
                             headers={"Content-Type": "application/octet-stream"}, timeout=30).status_code == 503
        scale = threading.Timer(1.0, lambda: requests.put(f"{management}/models/mnist/7.7",
                                                          params={"min_worker": 1}, timeout=60))
        scale.start()
        started = time.monotonic()
        reading = Client(torchserve.inference_url, retries=6, backoff=0.5).predict(SAMPLES / "seven-photo.jpg",
                                                                                   model="mnist/7.7")
        assert reading.label == "7" and reading.model["version"] == "7.7"
        assert time.monotonic() - started >= 1.0                   # it waited for the worker
        scale.join()
    finally:
        requests.delete(f"{management}/models/mnist/7.7", timeout=60)
    with pytest.raises(DigitLensError) as gone:
        Client(torchserve.inference_url, retries=1, backoff=0.1).predict(SAMPLES / "seven-photo.jpg", model="mnist/7.7")
    assert gone.value.status == 404


def test_the_command_reads_a_folder_as_the_server_does_and_reports_the_bad_file(torchserve, uploads):
    result = digitlens("predict", str(uploads), "--json", "--url", torchserve.inference_url)
    assert result.returncode == 1, result.stderr                   # one file failed
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 * UPLOADS_OF_EACH + 1 and not any(line["path"].endswith(".txt") for line in lines)
    broken = next(line for line in lines if line["path"].endswith("broken.png"))
    assert broken["error"]["status"] == 415 and broken["error"]["type"] == "not_an_image"
    read = [line for line in lines if "error" not in line]
    for line in read:
        direct = requests.post(f"{torchserve.inference_url}/predictions/mnist", data=open(line["path"], "rb").read(),
                               headers={"Content-Type": "application/octet-stream"}, timeout=60).json()
        assert (line["digit"], line["outlier"]) == (direct["digit"], direct["outlier"]), line["path"]
        assert line["confidence"] == pytest.approx(direct["confidence"], abs=1e-6)
    right = sum(line["label"] == line["path"].rsplit("label", 1)[1][0] for line in read)
    assert right >= 0.95 * len(read)


def test_the_command_writes_a_table_and_csv_and_saves_charts_and_reads_numbers(torchserve, uploads, tmp_path):
    table = digitlens("predict", str(uploads / "drawn"), str(uploads / "broken.png"), "--csv", str(tmp_path / "out.csv"),
                      "--url", torchserve.inference_url)
    assert table.returncode == 1
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert len(rows) == UPLOADS_OF_EACH + 1 == len(table.stdout.splitlines())
    assert rows[-1]["path"].endswith("broken.png") and rows[-1]["error"].startswith("not_an_image")
    assert all(row["label"] and float(row["confidence"]) > 0 for row in rows[:-1])
    charts = digitlens("predict", str(SAMPLES / "seven-canvas.png"), "--charts", str(tmp_path / "charts"), "--explain",
                       env={"DIGITLENS_URL": torchserve.inference_url})
    assert charts.returncode == 0 and charts.stdout.split("\t")[1] == "7"
    saved = {path.name for path in (tmp_path / "charts").iterdir()}
    assert {"seven-canvas.probabilities.png", "seven-canvas.input.png", "seven-canvas.conv1.png",
            "seven-canvas.attributions.png"} <= saved
    number = digitlens("predict", str(SAMPLES / "number-canvas.png"), "--number", "--json", "--url", torchserve.inference_url)
    assert number.returncode == 0 and json.loads(number.stdout)["number"] == "2026"


def test_the_command_says_how_to_start_a_server_that_is_not_there(uploads):
    result = digitlens("predict", str(uploads), "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 3 and "make serve" in result.stderr
    assert digitlens("health", "--url", f"http://127.0.0.1:{free_port()}").returncode == 3
    assert digitlens("predict", str(uploads / "missing.png")).returncode == 2


def test_models_and_health(torchserve):
    listed = digitlens("models", "--json", "--url", torchserve.inference_url, "--management", torchserve.management_url)
    assert listed.returncode == 0, listed.stderr
    versions = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {"name": "mnist", "version": "1.0", "default": True} in versions
    assert {"name": "fashion", "version": "1.0", "default": True} in versions
    health = digitlens("health", "--json", "--url", torchserve.inference_url)
    assert health.returncode == 0 and json.loads(health.stdout)["healthy"] is True


def test_pip_install_gives_the_command_without_torch(torchserve, tmp_path):
    """In a fresh venv: `pip install .`, then the installed `digitlens` reads a file."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    installed = subprocess.run([str(tmp_path / "venv" / "bin" / "pip"), "install", "--quiet", str(REPO_ROOT)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    command = tmp_path / "venv" / "bin" / "digitlens"
    read = subprocess.run([str(command), "predict", str(SAMPLES / "seven-photo.jpg"), "--json", "--url",
                           torchserve.inference_url], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["label"] == "7"
    modules = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c",
                              "import sys, digitlens.cli; print(sorted({'torch', 'numpy', 'PIL'} & set(sys.modules)))"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert modules.stdout.strip() == "[]", modules.stdout + modules.stderr
