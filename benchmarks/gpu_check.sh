#!/usr/bin/env bash
# The paper profile on a real GPU: one prepared check for a CUDA machine, about 8 minutes.
#
#   bash benchmarks/gpu_check.sh [--tiny] [--no-tests] [--steps LIST] [--budget-s N]
#                                [--jobs N] [--out DIR] [--keep-checkpoints] [--help]
#
# Runs in the repository (or a copy of it). Everything goes under $OUT (default: gpu-check/
# in the repository): logs/<step>.log for each step, summary.txt with one line per step (ok,
# failed or skipped, and its seconds), and what the steps write. A failing step does not
# stop the others; the exit status is 1 when any step failed.
#
# Steps (--steps takes a comma-separated subset; they run in this order):
#   install  the project as README.md says (python3 -m venv .venv; pip install torch==2.14.1
#            torchvision==0.29.1 -e ".[dev,book]"); skipped when `import adtr, torch` (and
#            timm, papermill) already works in the active environment or in .venv
#   env      the machine: nvidia-smi, torch and its CUDA, bf16, triton, a C compiler
#   tests    python -m pytest -q, at most $TESTS_S s, side by side with smoke. The tests take
#            no device (there is no switch): they run the CPU paths, plus whatever picks the
#            device "auto", which is CUDA here. The files that train (fit, plus, sharing,
#            faults, ...) go first, so a cap cuts the others
#   smoke    adtr reproduce --profile smoke --force --jobs 2 --device cuda, every notebook,
#            into $OUT/results/smoke/ (at most $SMOKE_S s)
#   bench    python benchmarks/run.py --device cuda --precisions fp32 bf16 fp16 --compile
#            into $OUT/benchmarks/cuda-<gpu>.json, e.g. cuda-nvidia-h200.json (at most
#            $BENCH_S s; cut short, it leaves the rows so far in cuda-<gpu>.json.partial;
#            copy the file to results/benchmarks/ for the book's Benchmarks page)
#   table4a  Table 4a (variants adtr, cnn, no_attention, no_query) at the paper's model size
#            and schedule (the paper profile: d 256, 4+4 layers, 8 heads, ff 1024, dropout
#            0.1, 500 epochs, lr x0.1 at 400, batch 16, AdamW 1e-4) on the offline generated
#            data (data/synthetic, `adtr synth --profile cpu` where a category is missing)
#            with EfficientNet-Lite2 (the largest backbone whose ImageNet weights ship in a
#            pip package), seed 0. The four variants of a category train side by side on
#            the one GPU; categories follow in order while --budget-s lasts. Each run in
#            $OUT/table4a/<category>/<variant>/ (metrics.json, fit.log), all of them in
#            $OUT/table4a/runs.csv
#
# Options:
#   --tiny              a CPU rehearsal of every step: device cpu, 1 epoch, smoke-sized data,
#                       128 px, one category, one notebook, the benchmark --quick in fp32
#                       only, the tests of one quick file
#   --no-tests          skip the tests step
#   --steps LIST        e.g. bench,table4a (default: all)
#   --budget-s N        table4a: start no category that would end after N + 30 s (the
#                       first always starts), stop every run at N + 30 s (default 90)
#   --jobs N            table4a: runs side by side (default 4)
#   --out DIR           instead of $OUT
#   --keep-checkpoints  keep table4a's checkpoint.pt files (by default deleted once the run
#                       wrote metrics.json: tens of MB each)
# Caps in seconds, from the environment: TESTS_S (100), SMOKE_S (100), BENCH_S (270; with
# --tiny 900: the CPU is slow), INSTALL_S (300). On a GPU the defaults add up to about 8.5
# minutes at most after the install (tests and smoke run side by side).

# The step functions run through run_step, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

tiny=0 run_tests=1 keep=0 budget=90 grace=30 jobs=4 out=${OUT:-}
steps=install,env,tests,smoke,bench,table4a
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=1 ;;
    --no-tests) run_tests=0 ;;
    --keep-checkpoints) keep=1 ;;
    --steps | --budget-s | --jobs | --out)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      case $1 in
        --steps) steps=$2 ;;
        --budget-s) budget=$2 ;;
        --jobs) jobs=$2 ;;
        --out) out=$2 ;;
      esac
      shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for number in "$budget" "$jobs"; do
  [[ $number =~ ^[0-9]+$ ]] || { echo "not a whole number: $number" >&2; exit 2; }
done
[ "$jobs" -ge 1 ] || { echo "--jobs must be at least 1" >&2; exit 2; }
ALL_STEPS=(install env tests smoke bench table4a)
for step in ${steps//,/ }; do
  [[ " ${ALL_STEPS[*]} " == *" $step "* ]] || {
    echo "unknown step: $step (steps: ${ALL_STEPS[*]})" >&2; exit 2; }
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "$out" ]; then
  mkdir -p "$out" && out=$(cd "$out" && pwd)
else
  out=$root/gpu-check
fi
cd "$root" || exit 1
OUT=$out
mkdir -p "$OUT/logs"
rm -f "$OUT"/logs/*.status

TESTS_S=${TESTS_S:-100} SMOKE_S=${SMOKE_S:-100} INSTALL_S=${INSTALL_S:-300}
if [ "$tiny" = 1 ]; then BENCH_S=${BENCH_S:-900}; else BENCH_S=${BENCH_S:-270}; fi
# What each mode runs.
if [ "$tiny" = 1 ]; then
  device=cpu data_root=data/synthetic-smoke synth_profile=smoke max_categories=1
  fit_extra=(--epochs 1 --image-size 128)
  smoke_extra=(--only 01 --categories brick --epochs 1)
  bench_extra=(--quick --precisions fp32)
  test_files=(tests/test_profiles.py)
else
  device=cuda data_root=data/synthetic synth_profile=cpu max_categories=99
  fit_extra=() smoke_extra=() bench_extra=(--precisions fp32 bf16 fp16 --compile)
  # The files whose tests train or extract on the device "auto" first, then the others.
  test_files=()
  for file in tests/test_{fit,plus,sharing,faults,features,model,oneclass}.py; do
    if [ -f "$file" ]; then test_files+=("$file"); fi
  done
  for file in tests/test_*.py; do
    [[ " ${test_files[*]} " == *" $file "* ]] || test_files+=("$file")
  done
fi
VARIANTS=(adtr cnn no_attention no_query)
# A feature cache of this check's own: the cache key does not record the device, and CUDA
# extracts under bf16 autocast, so features made here must not mix with a CPU cache.
export ADTR_CACHE_DIR="$root/.cache/gpu-check/$device"
export PYTHONUNBUFFERED=1

pick_python() {
  if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then
    # shellcheck disable=SC1091
    . .venv/bin/activate
  fi
  if command -v python > /dev/null; then PY=python; else PY=python3; fi
}
ready() { "$PY" -c "import adtr, torch, timm, papermill" > /dev/null 2>&1; }

want() { [[ ",$steps," == *",$1,"* ]]; }

# run_step NAME FUNCTION: the function's output goes to logs/NAME.log, its status to
# logs/NAME.status (summary.txt is made from those at the end).
run_step() {
  local name=$1 fn=$2 started=$SECONDS rc status note=""
  local log=$OUT/logs/$name.log
  echo "== $name: started $(date +%T) (log: $log)"
  "$fn" > "$log" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then status=ok; else status=failed; note=" (exit $rc)"; fi
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then note=" (exit $rc: ran past its time cap)"; fi
  printf '%-8s %-7s %4d s%s\n' "$name" "$status" $((SECONDS - started)) "$note" \
    > "$OUT/logs/$name.status"
  echo "== $(cat "$OUT/logs/$name.status")"
  if [ "$rc" != 0 ]; then tail -n 20 "$log" | sed 's/^/   | /'; fi
  return 0
}

skip_step() { printf '%-8s %-7s %4d s%s\n' "$1" skipped 0 " ($2)" > "$OUT/logs/$1.status"; }

step_install() {
  if ready; then
    echo "import adtr, torch, timm, papermill works with $PY ($("$PY" -c 'import sys; print(sys.prefix)')); nothing to install"
    return 0
  fi
  echo "installing as README.md says"
  if [ ! -f .venv/bin/activate ]; then
    # With the system's packages visible: a torch already on this machine can serve.
    python3 -m venv --system-site-packages .venv || { echo "INSTALL FAILED: python3 -m venv"; return 1; }
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
  PY=python
  if ! timeout -k 10 "$INSTALL_S" pip install --retries 1 --timeout 20 \
      torch==2.14.1 torchvision==0.29.1 -e ".[dev,book]"; then
    echo "INSTALL FAILED: pip could not install torch==2.14.1 torchvision==0.29.1 -e .[dev,book]"
    echo "(no package registry reachable?); trying with the packages already on this machine"
    timeout -k 10 120 pip install --no-deps --no-build-isolation -e . ||
      echo "INSTALL FAILED: pip install --no-deps --no-build-isolation -e . failed too"
  fi
  python -m ipykernel install --sys-prefix --name python3 > /dev/null 2>&1 ||
    echo "note: no Jupyter kernel installed (ipykernel missing?): the smoke step will fail"
  if ! ready; then
    echo "INSTALL FAILED: this still fails:"
    "$PY" -c "import adtr, torch, timm, papermill"
    return 1
  fi
  echo "installed: $("$PY" -c 'import torch; print("torch", torch.__version__)')"
}

step_env() {
  echo "host: $(uname -srm), $(nproc) cores, $(free -g 2> /dev/null | awk '/^Mem/ { print $2 }') GiB memory"
  df -h . | tail -n 1
  if command -v nvidia-smi > /dev/null; then nvidia-smi; else echo "nvidia-smi: not found"; fi
  "$PY" - "$device" << 'PY'
import platform
import shutil
import sys

import torch

print("python", platform.python_version(), "| torch", torch.__version__,
      "| built with CUDA", torch.version.cuda, "| cuDNN", torch.backends.cudnn.version())
available = torch.cuda.is_available()
print("CUDA available:", available, "| devices:", torch.cuda.device_count())
if available:
    print("device 0:", torch.cuda.get_device_name(0), "| capability",
          torch.cuda.get_device_capability(0), "| bf16:", torch.cuda.is_bf16_supported())
try:
    import triton
    print("triton", triton.__version__)
except ImportError:
    print("triton: not installed (torch.compile on CUDA needs it)")
compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
print("C compiler (torch.compile's inductor needs one):", compiler or "none")
if sys.argv[1] == "cuda" and not available:
    sys.exit("CUDA is not available: the GPU steps will fail")
PY
}

step_tests() {
  timeout -k 10 "$TESTS_S" "$PY" -m pytest -q --durations=15 "${test_files[@]}"
}

step_smoke() {
  timeout -k 10 "$SMOKE_S" "$PY" -m adtr reproduce --profile smoke --force --jobs 2 \
    --device "$device" "${smoke_extra[@]}" --results-dir "$OUT/results"
}

gpu_slug() {
  local name
  name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -n 1)
  [ -n "$name" ] || name=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))" 2> /dev/null)
  [ -n "$name" ] || name=unknown-gpu
  echo "$name" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9.]+/-/g; s/^-+//; s/-+$//'
}

step_bench() {
  local name=cpu
  [ "$device" = cpu ] || name=cuda-$(gpu_slug)
  timeout -k 10 "$BENCH_S" "$PY" benchmarks/run.py --device "$device" "${bench_extra[@]}" \
    --out "$OUT/benchmarks/$name.json"
}

# One training run of table4a in the background; its exit status goes to DIR/exit_code.
start_fit() {
  local category=$1 variant=$2 seconds=$3 threads=$4
  local dir=$OUT/table4a/$category/$variant
  mkdir -p "$dir"
  rm -f "$dir/exit_code"
  (
    OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads timeout -k 10 "$seconds" \
      "$PY" -m adtr fit --profile paper --data-root "$data_root" --backbone efficientnet_lite2 \
      --variant "$variant" --category "$category" --seed 0 --device "$device" \
      "${fit_extra[@]}" --out "$dir" --quiet > "$dir/fit.log" 2>&1
    echo $? > "$dir/exit_code"
  ) &
}

step_table4a() {
  local started=$SECONDS deadline=$((SECONDS + budget + grace)) last=0 threads category
  local -a categories missing=()
  read -r -a categories <<< "$("$PY" -c 'from adtr.synth import CATEGORIES; print(*CATEGORIES)')"
  [ ${#categories[@]} -gt 0 ] || { echo "cannot read adtr.synth.CATEGORIES"; return 1; }
  categories=("${categories[@]:0:$max_categories}")
  for category in "${categories[@]}"; do
    [ -d "$data_root/$category/train/good" ] || missing+=("$category")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "generating ${missing[*]} into $data_root (adtr synth --profile $synth_profile)"
    "$PY" -m adtr synth --out "$data_root" --profile "$synth_profile" \
      --categories "${missing[@]}" --quiet || return 1
  fi
  threads=$(($(nproc) / jobs))
  [ "$threads" -ge 1 ] || threads=1
  rm -rf "$OUT/table4a"
  mkdir -p "$OUT/table4a"
  for category in "${categories[@]}"; do
    local now=$SECONDS
    if [ "$last" -gt 0 ] && [ $((now + last)) -gt "$deadline" ]; then
      echo "budget: $((now - started)) s spent, a category took $last s; not starting $category"
      break
    fi
    echo "$category: ${VARIANTS[*]}, $jobs side by side, $threads CPU threads each, at most $((deadline - now)) s"
    for variant in "${VARIANTS[@]}"; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
      start_fit "$category" "$variant" $((deadline - SECONDS > 10 ? deadline - SECONDS : 10)) \
        "$threads"
    done
    wait
    last=$((SECONDS - now > 0 ? SECONDS - now : 1))
    echo "$category: done in $last s"
  done
  "$PY" - "$OUT/table4a" "${VARIANTS[@]}" << 'PY'
import csv
import json
import sys
from pathlib import Path

root, variants = Path(sys.argv[1]), sys.argv[2:]
fields = ["variant", "category", "seed", "image_auroc", "pixel_auroc", "aupro",
          "wall_time_s", "epochs_trained", "status"]
rows = []
for category in sorted(p.name for p in root.iterdir() if p.is_dir()):
    for variant in variants:
        run = root / category / variant
        if not run.is_dir():
            continue
        code_file = run / "exit_code"
        code = code_file.read_text().strip() if code_file.is_file() else "?"
        row = dict.fromkeys(fields, "") | {"variant": variant, "category": category}
        if code == "0" and (run / "metrics.json").is_file():
            result = json.loads((run / "metrics.json").read_text())
            record = result.get("record", {})
            row.update({m: round(result[m], 4) for m in ("image_auroc", "pixel_auroc", "aupro")})
            row.update(seed=record.get("seed", ""), wall_time_s=record.get("wall_time_s", ""),
                       epochs_trained=record.get("epochs_trained", ""), status="ok")
        elif code in ("124", "137"):
            row["status"] = "stopped at the time budget"
        else:
            row["status"] = f"failed (exit {code}; see {run / 'fit.log'})"
        rows.append(row)
with open(root / "runs.csv", "w", newline="") as file:
    writer = csv.DictWriter(file, fields)
    writer.writeheader()
    writer.writerows(rows)
print(f"{root / 'runs.csv'}:")
print(",".join(fields))
for row in rows:
    print(",".join(str(row[f]) for f in fields))
ok = sum(row["status"] == "ok" for row in rows)
print(f"{ok} of {len(rows)} runs finished")
failed = [row for row in rows if row["status"].startswith("failed")]
sys.exit(1 if failed or not ok else 0)
PY
  local rc=$?
  if [ "$keep" = 0 ]; then find "$OUT/table4a" -name checkpoint.pt -delete; fi
  return "$rc"
}

started_all=$SECONDS
pick_python
if want install; then run_step install step_install; else skip_step install "not in --steps"; fi
pick_python
if want env; then run_step env step_env; else skip_step env "not in --steps"; fi
# The tests and the smoke batch side by side (neither is a timing); the rest one at a time.
if want tests && [ "$run_tests" = 1 ]; then
  run_step tests step_tests &
  tests_pid=$!
else
  skip_step tests "$([ "$run_tests" = 1 ] && echo "not in --steps" || echo "--no-tests")"
  tests_pid=
fi
if want smoke; then run_step smoke step_smoke; else skip_step smoke "not in --steps"; fi
if [ -n "$tests_pid" ]; then wait "$tests_pid"; fi
if want bench; then run_step bench step_bench; else skip_step bench "not in --steps"; fi
if want table4a; then run_step table4a step_table4a; else skip_step table4a "not in --steps"; fi

for step in "${ALL_STEPS[@]}"; do cat "$OUT/logs/$step.status"; done > "$OUT/summary.txt"
echo
echo "summary ($OUT/summary.txt; $((SECONDS - started_all)) s in all):"
cat "$OUT/summary.txt"
if [ -f "$OUT/table4a/runs.csv" ]; then echo; cat "$OUT/table4a/runs.csv"; fi
if grep -q ' failed ' "$OUT/summary.txt"; then exit 1; fi
exit 0
