#!/usr/bin/env bash
# Benchmark suites behind benchmarks/RESULTS.md (method: benchmarks/README.md).
#
#   bash benchmarks/suite.sh SUITE [SUITE ...]      from the repository root
#
#   env        versions, nvidia-smi, `doctor --json`, the test suite on this machine (GPU tests run here)
#   speed      reference and ours, process wall (start to exit), fp16 and --precision auto, same call:
#              432x240x80, 1280x720x80, 1920x1080x50, 3840x2160x16
#   quality    fp16 and auto against fp32 inside the dilated masks (compare.py), 432x240x80 and 1280x720x80
#   memory     peak GPU 80 vs 240 frames of 720p; host RSS with --scratch disk vs memory; live blocks at the peak
#   cpu        CPU: reference fp32 vs ours auto and fp32, 12 frames of bmx-trees at 256x144 (process wall)
#   coldstart  one fresh CLI run under `python -X importtime` and under cProfile (the profile goes to $OUT)
#   ab         this tree against another, alternating, process wall: BASE_TREE=DIR (a copy of the other
#              tree: git archive BASE src benchmarks | tar -x -C DIR), AB_SIZE="1280 720 80", AB_ROUNDS=4,
#              AB_PRECISION=fp16
#
# Results: one JSON line per run in $OUT/results.jsonl (default OUT=/tmp/out); logs and profiles beside it.
# Needs (ignored, carried to the device machine): .devcarry/ref (a checkout of the reference ProPainter,
# its weights/ are written with stand-ins when absent), .devcarry/data/bmx-trees (frames/, masks/) and
# .devcarry/whl (einops for the reference, which that machine lacks). The device machine has torch, OpenCV
# and numpy but not PyAV/OpenImageIO: PYTHONPATH=src, no install (PNG frames go through OpenCV).
set -u
# wheels carried in .devcarry/whl (the reference's einops; OpenImageIO/OpenColorIO for EXR/DPX plates) are
# installed into a folder of their own, never into the machine's Python
if compgen -G ".devcarry/whl/*.whl" > /dev/null && [ ! -d /tmp/pw-site ] && ! ${PY:-python3} -c "import einops" 2>/dev/null
then
  ${PY:-python3} -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/pw-site \
    .devcarry/whl/*.whl || echo "suite.sh: the wheels in .devcarry/whl did not install here" >&2
fi
[ -d /tmp/pw-site ] && export PYTHONPATH=/tmp/pw-site${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export PROPAINTER_WIRE_SHARED=${PROPAINTER_WIRE_SHARED:-$PWD/.devcarry}  # the parity tests' data
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PY:-python3}
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac  # (suite ab runs from another tree)
REF=${REF:-$PWD/.devcarry/ref}
BMX=${BMX:-$PWD/.devcarry/data/bmx-trees}
CLIPS=${CLIPS:-/tmp/pw-clips}; mkdir -p "$CLIPS"; CLIPS=$(cd "$CLIPS" && pwd)  # (suite ab runs from another tree)
LIMIT=${LIMIT:-300}  # seconds per timed run
RESULTS=$OUT/results.jsonl
DEVICE=${DEVICE:-cuda}

clip() {  # width height frames -> prints the folder of the scaled bmx-trees clip (written once)
  local dir=$CLIPS/${1}x${2}x${3}
  [ -d "$dir" ] || $PY benchmarks/bench.py --write-clip "$dir" --source "$BMX" --width "$1" --height "$2" \
    --frames "$3" >&2
  echo "$dir"
}

record() {  # name, then bench.py arguments: appends its JSON line (or the failure) to results.jsonl
  local name=$1; shift
  $PY benchmarks/bench.py --name "$name" --timeout "$LIMIT" "$@" > "$OUT/last.json" 2> "$OUT/last.err"
  if [ -s "$OUT/last.json" ]; then  # a run that failed inside still gives its line (exit code, error)
    tail -n 1 "$OUT/last.json" >> "$RESULTS"
  else
    $PY -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "failed": open(sys.argv[2]).read()[-2000:]}))' \
      "$name" "$OUT/last.err" >> "$RESULTS"
  fi
  tail -n 1 "$RESULTS" | cut -c1-240
}

ours() {  # name width height frames precision [more bench.py args]: process wall, bmx-trees clip
  local name=$1 w=$2 h=$3 n=$4 p=$5; shift 5
  record "$name" --mode process --engine propainter --device "$DEVICE" --precision "$p" \
    --clip "$(clip "$w" "$h" "$n")" --width "$w" --height "$h" --frames "$n" "$@"
}

reference() {  # name width height frames precision: the reference script, process wall
  local name=$1 w=$2 h=$3 n=$4 p=$5
  record "$name" --mode reference --ref "$REF" --precision "$p" \
    --clip "$(clip "$w" "$h" "$n")" --width "$w" --height "$h" --frames "$n"
}

psnr() {  # size label, clip folder, precision a, precision b
  $PY benchmarks/compare.py "/tmp/pw-keep/${1}_$3" "/tmp/pw-keep/${1}_$4" "$2/masks" \
    | $PY -c 'import json,sys; r=json.load(sys.stdin); r.update(name=sys.argv[1]); print(json.dumps(r))' \
      "psnr_${1}_$3_vs_$4" >> "$RESULTS"
  tail -n 1 "$RESULTS"
}

suite_env() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia_smi.txt"
  $PY -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'cudnn', torch.backends.cudnn.version(), 'opencv', cv2.__version__, 'numpy', numpy.__version__)" \
    | tee "$OUT/versions.txt"
  git log -1 --format='commit %H %cd' 2>/dev/null | tee -a "$OUT/versions.txt"
  $PY -m propainter_wire doctor --json > "$OUT/doctor.json"; echo "doctor exit $?"
  timeout 480 $PY -m pytest -q -p no:cacheprovider tests > "$OUT/tests.txt" 2>&1
  grep -E "FAILED|ERROR|passed|failed" "$OUT/tests.txt" | tail -25
}

suite_speed() {
  # one warm-up run first (disk cache, GPU clocks); it is recorded but not a figure
  ours warmup_432x240x80_fp16 432 240 80 fp16
  for size in "432 240 80" "1280 720 80" "1920 1080 50"; do
    set -- $size; local n=${1}x${2}x${3}
    reference "ref_${n}_fp16" "$1" "$2" "$3" fp16
    ours "ours_${n}_fp16" "$1" "$2" "$3" fp16
    ours "ours_${n}_auto" "$1" "$2" "$3" auto
    ours "ours_${n}_fp16_b" "$1" "$2" "$3" fp16
  done
  reference ref_3840x2160x16_fp16 3840 2160 16 fp16  # the reference fails here (integer out of range)
  ours ours_3840x2160x16_fp16 3840 2160 16 fp16
}

suite_quality() {
  mkdir -p /tmp/pw-keep
  for size in "432 240 80" "1280 720 80"; do
    set -- $size; local n=${1}x${2}x${3}
    for p in fp32 fp16 auto; do
      rm -rf "/tmp/pw-keep/${n}_$p"
      ours "keep_${n}_$p" "$1" "$2" "$3" "$p" --keep-output "/tmp/pw-keep/${n}_$p"
    done
    psnr "$n" "$(clip "$1" "$2" "$3")" fp16 fp32
    psnr "$n" "$(clip "$1" "$2" "$3")" auto fp32
  done
}

suite_memory() {
  ours mem_1280x720x80_fp16 1280 720 80 fp16
  ours mem_1280x720x240_fp16 1280 720 240 fp16
  ours mem_1280x720x80_fp16_disk 1280 720 80 fp16 --scratch disk
  ours mem_1280x720x240_fp16_disk 1280 720 240 fp16 --scratch disk
  timeout "$LIMIT" $PY benchmarks/memory_peak.py --width 1280 --height 720 --frames 240 --source "$BMX" \
    --precision fp16 > "$OUT/memory_peak_1280x720x240.json" 2> "$OUT/memory_peak.err"
  head -c 600 "$OUT/memory_peak_1280x720x240.json"; echo
}

suite_cpu() {
  local device=$DEVICE
  DEVICE=cpu
  for round in 1 2 3; do  # alternating: a slow spell of a shared VM touches every program alike
    reference "ref_256x144x12_cpu_fp32_$round" 256 144 12 fp32
    ours "ours_256x144x12_cpu_auto_$round" 256 144 12 auto  # the default: bf16 where the CPU has it
    ours "ours_256x144x12_cpu_fp32_$round" 256 144 12 fp32
  done
  DEVICE=$device
}

suite_ab() {  # both trees' bench.py time their own src (bench.py puts its checkout's src first)
  local base=${BASE_TREE:-} p=${AB_PRECISION:-fp16} w h n round
  if [ -z "$base" ] || [ ! -f "$base/benchmarks/bench.py" ]; then
    echo "ab: set BASE_TREE to a copy of the tree to compare against" >&2; return 2
  fi
  base=$(cd "$base" && pwd)
  read -r w h n <<< "${AB_SIZE:-1280 720 80}"
  clip "$w" "$h" "$n" > /dev/null  # written once, from this tree (the clip's folder is absolute)
  ours "ab_warmup_this" "$w" "$h" "$n" "$p"  # each tree's first run fills its bytecode cache
  (cd "$base" && ours "ab_warmup_base" "$w" "$h" "$n" "$p")
  for round in $(seq "${AB_ROUNDS:-4}"); do
    ours "ab_this_${w}x${h}x${n}_$round" "$w" "$h" "$n" "$p"
    (cd "$base" && ours "ab_base_${w}x${h}x${n}_$round" "$w" "$h" "$n" "$p")
  done
}

suite_coldstart() {
  local c weights=/tmp/pw-weights
  c=$(clip 432 240 80)
  [ -f $weights/ProPainter.pth ] || $PY -c "import sys; sys.path.insert(0, 'benchmarks')
from bench import _stand_in_weights; _stand_in_weights(__import__('pathlib').Path('$weights'))"
  local args=(inpaint -i "$c/frames" -m "$c/masks" --engine propainter --weights-dir $weights
              --device "$DEVICE" --precision fp16 --quiet --overwrite)
  $PY -X importtime -m propainter_wire "${args[@]}" -o /tmp/pw-cold1 2> "$OUT/importtime.txt"
  sort -t'|' -k2 -n -r "$OUT/importtime.txt" | head -25
  $PY -m cProfile -o "$OUT/coldstart.prof" -m propainter_wire "${args[@]}" -o /tmp/pw-cold2
  $PY -c "import pstats; pstats.Stats('$OUT/coldstart.prof').sort_stats('cumulative').print_stats(40)" \
    > "$OUT/coldstart_cumulative.txt"
  head -60 "$OUT/coldstart_cumulative.txt"
}

[ $# -gt 0 ] || { sed -n 2,21p "$0"; exit 2; }
for suite in "$@"; do
  case $suite in
    env|speed|quality|memory|cpu|coldstart|ab) echo "== $suite"; "suite_$suite" ;;
    *) echo "unknown suite: $suite (env speed quality memory cpu coldstart ab)" >&2; exit 2 ;;
  esac
done
