# bench/llama/common.sh — sourced by run.sh and check_load.sh: installs the pinned
# node-llama-cpp and builds llama.cpp's own tools from the source it ships, both in a
# cache directory outside the repository (never at CI time; the first run takes a
# while, later runs reuse everything).
#
#   CAIRN_BENCH_CACHE  the cache (default ~/.cache/cairn-bench)
#   NLC_DIR            use an existing install: the directory holding node_modules/node-llama-cpp
#   LLAMA_BIN          use existing llama.cpp tools: the directory holding llama-bench etc.
NLC_VERSION=3.21.1
CAIRN_BENCH_CACHE="${CAIRN_BENCH_CACHE:-$HOME/.cache/cairn-bench}"

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "bench/llama: $*" >&2; exit 1; }

# Sets NLC_DIR to a directory whose node_modules holds node-llama-cpp $NLC_VERSION.
ensure_nlc() {
  command -v node >/dev/null && command -v npm >/dev/null ||
    die "node (>= 20) and npm are needed; scripts/setup does not install them (Debian 12's nodejs is 18: use NodeSource's)"
  [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || die "node-llama-cpp needs node >= 20, found $(node --version)"
  if [ -z "${NLC_DIR:-}" ]; then
    NLC_DIR="$CAIRN_BENCH_CACHE/nlc-$NLC_VERSION"
    if [ ! -f "$NLC_DIR/node_modules/node-llama-cpp/package.json" ]; then
      log "installing node-llama-cpp@$NLC_VERSION into $NLC_DIR"
      mkdir -p "$NLC_DIR"
      (cd "$NLC_DIR" && npm i -E --no-audit --no-fund "node-llama-cpp@$NLC_VERSION" >&2) ||
        die "npm i node-llama-cpp@$NLC_VERSION failed"
    fi
  fi
  local v
  v=$(node -p "require('$NLC_DIR/node_modules/node-llama-cpp/package.json').version") ||
    die "no node-llama-cpp under $NLC_DIR/node_modules"
  [ "$v" = "$NLC_VERSION" ] || die "$NLC_DIR has node-llama-cpp $v, not $NLC_VERSION"
  export NLC_DIR
}

# Sets LLAMA_BIN to a directory with llama-bench, llama-simple and llama-embedding, built
# (Release, this CPU's instruction sets, ccache when present) from the llama.cpp source that
# node-llama-cpp ships as a git bundle, so both baselines are the same llama.cpp.
ensure_llama_tools() {
  if [ -n "${LLAMA_BIN:-}" ]; then
    [ -x "$LLAMA_BIN/llama-bench" ] || die "no llama-bench in LLAMA_BIN=$LLAMA_BIN"
    return
  fi
  ensure_nlc
  local pkg="$NLC_DIR/node_modules/node-llama-cpp/llama"
  local bundle="$pkg/gitRelease.bundle"
  [ -f "$bundle" ] || die "node-llama-cpp ships no $bundle"
  local head src="$CAIRN_BENCH_CACHE/llama.cpp-src"
  head=$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" {print $1}')
  if [ ! -d "$src/.git" ] || [ "$(git -C "$src" rev-parse HEAD)" != "$head" ]; then
    log "cloning llama.cpp ($(node -p "require('$pkg/llama.cpp.info.json').tag"), $head) into $src"
    rm -rf "$src"
    git clone -q "$bundle" "$src" && git -C "$src" checkout -q "$head" || die "cannot clone $bundle"
  fi
  LLAMA_BIN="$src/build/bin"
  # -DGGML_NATIVE=ON, except where the CPU advertises AMX: KVM guests can list amx_tile
  # and still fault on the first tile instruction (llama-bench dies with SIGILL in
  # ggml's AMX matmul), so there the native x86 features are named one by one without AMX.
  local isa=(-DGGML_NATIVE=ON)
  if grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
    isa=(-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
    local flag opt
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
                avx512_vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
      flag="${pair%%:*}"; opt="${pair##*:}"
      if grep -qw "$flag" /proc/cpuinfo; then isa+=("-DGGML_$opt=ON"); else isa+=("-DGGML_$opt=OFF"); fi
    done
  fi
  local stamp="$src/build/cairn-bench-options"
  if [ ! -x "$LLAMA_BIN/llama-bench" ] || [ ! -x "$LLAMA_BIN/llama-simple" ] || [ ! -x "$LLAMA_BIN/llama-embedding" ] ||
     [ "$(cat "$stamp" 2>/dev/null)" != "${isa[*]}" ]; then
    log "building llama-bench, llama-simple, llama-embedding (${isa[*]}; this takes a while)"
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$src" -B "$src/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "${isa[@]}" -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_CCACHE=ON >&2 || die "cmake configure failed"
    cmake --build "$src/build" -j "${LLAMA_JOBS:-$(nproc)}" --target llama-bench llama-simple llama-embedding >&2 ||
      die "llama.cpp build failed"
    echo "${isa[*]}" > "$stamp"
  fi
  export LLAMA_BIN
}
