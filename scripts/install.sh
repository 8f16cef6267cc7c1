#!/usr/bin/env bash
# Builds git-taskq in release mode and installs it, with its manual page, under a prefix, so that
# `git taskq <command>` works and `git taskq --help` (git turns it into `man git-taskq`) shows the manual.
#
#   scripts/install.sh [--prefix DIR] [--multi-page] [--scratch-path DIR]
#
# Needs: a Swift toolchain, libgit2-dev and pkg-config (the build links libgit2). Installs nothing else.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/install.sh [--prefix DIR] [--multi-page] [--scratch-path DIR]

Builds a release git-taskq and installs
  DIR/bin/git-taskq
  DIR/share/man/man1/git-taskq.1
Options:
  --prefix DIR        where to install (default: $HOME/.local)
  --multi-page        install one manual page per subcommand (git-taskq.add.1, ...) and a short
                      git-taskq.1; by default git-taskq.1 alone holds the whole manual
  --scratch-path DIR  SwiftPM build directory (default: the package's .build)
  -h, --help          show this help
EOF
}

die() {
  printf 'error: %s\n' "$1" >&2
  exit "${2:-1}"
}

prefix="${HOME:-}/.local"
multi_page=0
scratch=""
while (($# > 0)); do
  case "$1" in
    --prefix)
      (($# >= 2)) || die "--prefix needs a directory" 64
      prefix="$2"
      shift 2
      ;;
    --prefix=*)
      prefix="${1#--prefix=}"
      shift
      ;;
    --scratch-path)
      (($# >= 2)) || die "--scratch-path needs a directory" 64
      scratch="$2"
      shift 2
      ;;
    --scratch-path=*)
      scratch="${1#--scratch-path=}"
      shift
      ;;
    --multi-page)
      multi_page=1
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument '$1'" 64
      ;;
  esac
done
[[ -n "$prefix" ]] || die "empty --prefix (and \$HOME is not set)" 64

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$root/Package.swift" ]] || die "no Package.swift in '$root' (run the script from the git-taskq checkout)"
case "$prefix" in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac
scratch="${scratch:-$root/.build}"
case "$scratch" in
  /*) ;;
  *) scratch="$PWD/$scratch" ;;
esac

# Prerequisites: say what is missing rather than fail halfway through the build.
command -v swift >/dev/null 2>&1 || die "'swift' is not on PATH (install a Swift toolchain: https://swift.org/install)"
command -v git >/dev/null 2>&1 || die "'git' is not on PATH"
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libgit2; then
  die "libgit2 was not found by pkg-config (on Debian/Ubuntu: sudo apt-get install -y libgit2-dev pkg-config)"
fi

swift_args=(--package-path "$root" --scratch-path "$scratch")

printf '==> building git-taskq (release) in %s\n' "$root" >&2
swift build "${swift_args[@]}" -c release --product git-taskq >&2
bin_dir="$(swift build "${swift_args[@]}" -c release --show-bin-path)"
binary="$bin_dir/git-taskq"
[[ -x "$binary" ]] || die "the build did not produce '$binary'"

# The manual comes from swift-argument-parser's generate-manual plugin. It writes into the plugin's work
# directory under the scratch path; clear that first so that no page of an older build is installed.
man_out="$scratch/plugins/GenerateManual/outputs/git-taskq"
rm -rf "$man_out"
manual_args=()
if ((multi_page)); then
  manual_args+=(--multi-page)
fi
printf '==> generating the manual page\n' >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! swift package "${swift_args[@]}" generate-manual ${manual_args[@]+"${manual_args[@]}"} >"$log" 2>&1; then
  cat "$log" >&2
  die "generating the manual failed (swift package generate-manual)"
fi
# The plugin says where it wrote: "Generated manual in 'file:///…/git-taskq'".
reported="$(sed -n "s|^Generated manual in 'file://\(.*/git-taskq\)/\{0,1\}'.*|\1|p" "$log" | tail -n 1)"
if [[ -n "$reported" && -f "$reported/git-taskq.1" ]]; then
  man_out="$reported"
fi
[[ -f "$man_out/git-taskq.1" ]] || { cat "$log" >&2; die "the manual page git-taskq.1 was not generated"; }

# Install.
bin_target="$prefix/bin"
man_target="$prefix/share/man/man1"
mkdir -p "$bin_target" "$man_target"
install -m 0755 "$binary" "$bin_target/git-taskq"
installed=("$bin_target/git-taskq")
for page in "$man_out"/*.1; do
  name="$(basename "$page")"
  # The generated page separates paragraphs with blank lines, for which groff prints "mdoc warning: Empty
  # input line" on every 'git taskq --help'; mdoc's paragraph macro .Pp renders the same without them.
  sed 's/^$/.Pp/' "$page" >"$man_target/$name.tmp"
  chmod 0644 "$man_target/$name.tmp"
  mv -f "$man_target/$name.tmp" "$man_target/$name"
  installed+=("$man_target/$name")
done

printf '\ninstalled git-taskq %s:\n' "$("$bin_target/git-taskq" --version)"
printf '  %s\n' "${installed[@]}"

# Check what the user will run, as the user will run it: in a scratch repository, through git.
check_path="$bin_target:$PATH"
check_manpath="$prefix/share/man:${MANPATH:-}"
scratch_repo="$(mktemp -d)"
trap 'rm -f "$log"; rm -rf "$scratch_repo"' EXIT
git init -q "$scratch_repo"
if ! PATH="$check_path" git -C "$scratch_repo" taskq status >/dev/null; then
  die "'git taskq status' does not run with $bin_target on PATH"
fi
if ! command -v man >/dev/null 2>&1; then
  printf "note: the 'man' program is not installed, so 'git taskq --help' cannot show the manual\n" >&2
  printf "      (install it, e.g. 'sudo apt-get install -y man-db'; 'git taskq -h' works without it)\n" >&2
elif ! MANPATH="$check_manpath" man -w git-taskq >/dev/null 2>&1; then
  printf "warning: 'man' does not find git-taskq with MANPATH=%s\n" "$check_manpath" >&2
else
  printf "checked: 'git taskq status' runs, and 'man' finds git-taskq(1) for 'git taskq --help'\n"
fi

# What the shell needs; git finds git-taskq on PATH, man finds the page through MANPATH.
case ":$PATH:" in
  *":$bin_target:"*) ;;
  *) printf "note: %s is not on PATH yet, so 'git taskq' is not found until you add it\n" "$bin_target" >&2 ;;
esac
printf '\nadd to your shell profile (~/.bashrc, ~/.profile, ...) unless it is there already:\n'
printf '  export PATH="%s:$PATH"\n' "$bin_target"
printf '  export MANPATH="%s:${MANPATH:-}"   # the trailing colon keeps the system manual pages\n' \
  "$prefix/share/man"
printf 'then try, in a git repository:  git taskq status   and   git taskq --help\n'
