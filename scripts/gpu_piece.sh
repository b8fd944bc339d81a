#!/usr/bin/env bash
# One self-contained, resumable piece of the paper run on a GPU machine that has PyTorch but
# no network, for command slots of a few minutes. Run from the repository root:
#
#   scripts/gpu_piece.sh inventory                  python, torch, GPU and `pip freeze` into $OUT
#   scripts/gpu_piece.sh train MODELS [SEEDS]       train, then profile, the listed models (comma-separated)
#   scripts/gpu_piece.sh explain                    explain and export every model with a checkpoint here
#   scripts/gpu_piece.sh attention                  attention scaling to N = 65,536, bf16 (flash for softmax)
#   scripts/gpu_piece.sh latency                    check-latency, bf16 and fp32, resnet50 and pyramid_softmax
#
# Every piece installs the carried wheels (scripts/gpu_wheels.py, in wheels/) the machine lacks,
# generates the paper dataset when it is absent (same seed, same bytes), stops its stages at
# DEADLINE_S seconds, and packs every result file it wrote into $OUT/results-<piece>.tar.gz
# (`medbench results unpack` merges it here; then `medbench --machine-id <gpu id> run --suite
# paper --stages compare`). Results already committed travel with the tree, so a piece run
# again, on this machine or a fresh one, skips what is done. Checkpoints stay on the GPU
# machine: the stages that read them run in the same piece as the training, or in an `explain`
# piece on the same machine while it stays warm (a fresh machine has none: it explains nothing).
set -euo pipefail

OUT=${OUT:?set OUT to the folder the results go to}
DEADLINE_S=${DEADLINE_S:-500}
PY=${PYTHON:-python3}  # `$PY -m bench` from the repository root: the engine needs no install
SUITE=${SUITE:-paper}
piece=${1:?usage: scripts/gpu_piece.sh inventory|train|attention|latency ...}
started=$(date +%s)
log() { echo "[gpu_piece $(( $(date +%s) - started ))s] $*"; }

if [[ $piece == inventory ]]; then
    { $PY -V; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; nproc
      $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$OUT/inventory.txt"
    $PY -m pip freeze > "$OUT/gpu-freeze.txt"
    exit 0
fi

if [[ -d wheels ]] && compgen -G "wheels/*.whl" > /dev/null; then
    $PY -m pip install --quiet --no-index --find-links wheels/ wheels/*.whl
fi
marker=$(mktemp /tmp/gpu-piece.XXXX)  # result files newer than this are this piece's
left() { local s=$(( DEADLINE_S - ($(date +%s) - started) )); echo $(( s > 30 ? s : 30 )); }  # seconds, at least 30

case $piece in
train)
    models=${2:?models}
    seeds=${3:-0}
    $PY -m bench data synth --suite "$SUITE" --if-absent
    log "dataset ready"
    # training checkpoints every epoch; a piece cut off by the deadline resumes there next time on
    # the same machine, and otherwise retrains (checkpoints do not leave the machine)
    timeout --signal=INT "$(left)" $PY -m bench run --suite "$SUITE" --models "$models" --seeds "$seeds" \
        --stages train,baselines,profile || log "stopped at the deadline or failed: rc $?"
    ;;
explain)
    $PY -m bench data synth --suite "$SUITE" --if-absent
    # the seed-0 checkpoints the train pieces left on this machine; a model without one is skipped
    timeout --signal=INT "$(left)" $PY -m bench run --suite "$SUITE" --stages explain,export \
        || log "stopped at the deadline or failed: rc $?"
    ;;
attention)
    timeout --signal=INT "$(left)" $PY -m bench bench-attention --device cuda --dtype bfloat16 \
        --tokens 256,1024,4096,16384,65536 || log "attention: rc $?"
    ;;
latency)
    for dtype in bfloat16 float32; do
        $PY -m bench check-latency --scale paper --models resnet50,pyramid_softmax --device cuda --dtype $dtype \
            --json "$OUT/check-latency-$dtype.json"
    done
    ;;
*)
    echo "unknown piece $piece" >&2; exit 2 ;;
esac

staging=$(mktemp -d /tmp/gpu-results.XXXX)
(cd data/results && find . -name '*.json' -newer "$marker" -exec cp --parents {} "$staging" \;)
if compgen -G "$staging/*" > /dev/null; then
    $PY -m bench results pack "$OUT/results-$piece.tar.gz" --results-dir "$staging" --no-artifacts
fi
if [[ $piece == explain ]]; then  # the galleries, in an archive of their own: results come back even if it is too big
    gallery=$(mktemp -d /tmp/gpu-artifacts.XXXX)
    (cd data/artifacts && find "explain/$SUITE" -type f -newer "$marker" -exec cp --parents {} "$gallery" \; 2>/dev/null || true)
    if compgen -G "$gallery/*" > /dev/null; then
        $PY -m bench results pack "$OUT/artifacts-$piece.tar.gz" --results-dir "$(mktemp -d)" --artifacts-dir "$gallery"
        size=$(stat -c %s "$OUT/artifacts-$piece.tar.gz")
        (( size < 16 * 2**20 )) || log "artifacts-$piece.tar.gz is $(( size / 2**20 )) MiB, over the 16 MiB a file may bring back"
    fi
fi
log "done"
