#!/usr/bin/env bash
# Builds git-taskq in release mode and installs it, with its manual page and its bash, zsh and fish
# completions, under a prefix, so that `git taskq <command>` works, `git taskq --help` (git turns it into
# `man git-taskq`) shows the manual and `git taskq <TAB>` completes.
#
#   scripts/install.sh [--prefix DIR] [--multi-page] [--no-completions] [--scratch-path DIR]
#
# Needs: a Swift toolchain, libgit2-dev and pkg-config (the build links libgit2). Installs nothing else.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/install.sh [--prefix DIR] [--multi-page] [--no-completions] [--scratch-path DIR]

Builds a release git-taskq and installs
  DIR/bin/git-taskq
  DIR/share/man/man1/git-taskq.1
  DIR/share/bash-completion/completions/git-taskq   (git taskq <TAB> and git-taskq <TAB>)
  DIR/share/zsh/site-functions/_git-taskq
  DIR/share/fish/vendor_completions.d/git-taskq.fish
Options:
  --prefix DIR        where to install (default: $HOME/.local)
  --multi-page        install one manual page per subcommand (git-taskq.add.1, ...) and a short
                      git-taskq.1; by default git-taskq.1 alone holds the whole manual
  --no-completions    do not install the shell completions
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
completions=1
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
    --no-completions)
      completions=0
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

# Shell completions, generated by the binary just installed: argument-parser's scripts complete
# `git-taskq <TAB>` in bash, zsh and fish; for bash the same file also defines _git_taskq, which git's own
# completion loads (through bash-completion's loader, by the name git-taskq) and calls for `git taskq <TAB>`.
if ((completions)); then
  bash_dir="$prefix/share/bash-completion/completions"
  zsh_dir="$prefix/share/zsh/site-functions"
  fish_dir="$prefix/share/fish/vendor_completions.d"
  mkdir -p "$bash_dir" "$zsh_dir" "$fish_dir"
  {
    "$bin_target/git-taskq" --generate-completion-script bash
    "$bin_target/git-taskq" __git-completion bash
  } >"$bash_dir/git-taskq.tmp"
  "$bin_target/git-taskq" --generate-completion-script zsh >"$zsh_dir/_git-taskq.tmp"
  "$bin_target/git-taskq" --generate-completion-script fish >"$fish_dir/git-taskq.fish.tmp"
  for file in "$bash_dir/git-taskq" "$zsh_dir/_git-taskq" "$fish_dir/git-taskq.fish"; do
    chmod 0644 "$file.tmp"
    mv -f "$file.tmp" "$file"
    installed+=("$file")
  done
fi

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

# The bash completion, as bash will run it: git's completion, then ours, then `git taskq st<TAB>`.
git_completion=""
for candidate in /usr/share/bash-completion/completions/git /usr/local/share/bash-completion/completions/git \
  /etc/bash_completion.d/git; do
  if [[ -f "$candidate" ]]; then
    git_completion="$candidate"
    break
  fi
done
if ((completions)) && [[ -n "$git_completion" ]]; then
  # shellcheck disable=SC2016 # expanded by the inner bash
  reply="$(cd "$scratch_repo" && PATH="$check_path" bash --norc --noprofile -c '
    source "$1" && source "$2" || exit 1
    COMP_WORDS=(git taskq st); COMP_CWORD=2; COMP_LINE="git taskq st"; COMP_POINT=${#COMP_LINE}
    __git_wrap__git_main && printf "%s" "${COMPREPLY[*]}"' bash "$git_completion" "$bash_dir/git-taskq" 2>&1)"
  if [[ "$reply" == "status " ]]; then
    printf "checked: 'git taskq st<TAB>' completes to 'status' in bash\n"
  else
    printf "warning: the bash completion did not work in a test ('git taskq st<TAB>' gave '%s')\n" "$reply" >&2
  fi
elif ((completions)); then
  printf "note: git's bash completion (completions/git) is not installed, so 'git taskq <TAB>' cannot complete\n" >&2
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
if ((completions)); then
  # bash-completion and fish look under ~/.local/share (XDG_DATA_HOME) and the system's share directories
  # by themselves; any other prefix has to be named.
  printf '\ncompletions:\n'
  case "$prefix" in
    "${HOME:-}/.local" | /usr/local | /usr)
      printf '  bash: found by bash-completion (with git'"'"'s completion) by itself\n'
      printf '  fish: found by itself\n'
      ;;
    *)
      printf '  bash: add  source %s  to ~/.bashrc (after git'"'"'s completion)\n' "$bash_dir/git-taskq"
      printf '  fish: add  source %s  to ~/.config/fish/config.fish\n' "$fish_dir/git-taskq.fish"
      ;;
  esac
  printf '  zsh: add  fpath=(%s $fpath)  before compinit in ~/.zshrc\n' "$zsh_dir"
fi
printf 'then try, in a git repository:  git taskq status   and   git taskq --help   and   git taskq <TAB>\n'
