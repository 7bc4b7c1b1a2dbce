# Sourced by the benchmark scripts: the site they all load (factories f0001… in one area,
# each with one effluent point of 10 parameters) and a write token for each factory.

# server.toml for `data_dir` with `factories` factories, anonymous reads from loopback.
bench_server_toml() { # data_dir factories
  printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "%s"\n\n[api]\nanonymous_read = "loopback"\n\n' "$1"
  printf '[[area]]\nid = "bench"\nname_en = "Bench"\nname_th = "ทดสอบ"\nprovince = "Lampang"\n'
  local i f
  for i in $(seq 1 "$2"); do
    f=$(printf 'f%04d' "$i")
    printf '\n[[area.factory]]\nid = "%s"\nname = "Factory %s"\ncategory = 3\n' "$f" "$f"
    printf '[[area.factory.point]]\nid = "outfall-1"\nkind = "effluent"\n'
    printf 'parameters = ["cod", "bod", "ph", "tss", "tds", "temp", "flow", "oil_grease", "tkn", "zn"]\n'
  done
}

# A write token for each factory, created in `data_dir`: lines "f0001 <token>".
bench_tokens() { # server data_dir factories
  local i f
  for i in $(seq 1 "$3"); do
    f=$(printf 'f%04d' "$i")
    echo "$f $("$1" token create --data-dir "$2" --factory "$f" 2>/dev/null)"
  done
}
