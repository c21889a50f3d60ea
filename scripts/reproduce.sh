#!/usr/bin/env bash
# Reproduces the paper's pipeline on the local real-audio sets (one command, resumable):
#
#   bash scripts/reproduce.sh [--preset cpu|paper] [--stages data,pretrain,ship,grid,tables] [--status]
#
# cpu (default): sized for this project's 2-core machine (configs/reproduce/cpu/: width-128, 4-layer
# HEAR; stages 1+2 ~65 min, the 40-run fine-tuning grid ~90 min). paper: the paper's sizes and
# schedules (configs/), for real hardware; it prints the expected cost first.
# Installs its apt dependencies, builds, builds or reuses data/*-local, then runs scripts/reproduce.py:
# runs in runs/reproduce/<preset>/, results (committed) in results/<preset>/, the pre-trained weights
# in models/ (cpu). A finished step is skipped and an interrupted one resumes: run it again to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" --status "* ]]; then
  bash scripts/setup.sh
  bash scripts/setup_data.sh
  bash scripts/build.sh
fi
exec /usr/bin/python3 scripts/reproduce.py "$@"
